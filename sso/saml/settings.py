"""A SAML connection's settings: the IdP's metadata, attribute names and presets, what is
stored in IdpConnection.settings, and our own side (SP URLs and key)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Self

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAME_ID_FORMATS = {
    "persistent": NAMEID_PERSISTENT,
    "email": NAMEID_EMAIL,
    "unspecified": NAMEID_UNSPECIFIED,
}


class Binding(StrEnum):
    REDIRECT = "redirect"
    POST = "post"


@dataclass(frozen=True, slots=True)
class AttributeNames:
    """Which SAML attributes carry the user's details; None: not sent."""

    email: str | None = "email"
    given_name: str | None = "firstName"
    surname: str | None = "lastName"
    display_name: str | None = None
    groups: str | None = None
    # A stable id to use instead of the NameID (Entra ID's object id).
    subject: str | None = None


_MS_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
PRESETS: dict[str, AttributeNames] = {
    # Okta's attribute statements as docs/okta.md asks for them.
    "okta": AttributeNames(
        email="email", given_name="firstName", surname="lastName", groups="groups"
    ),
    # Entra ID's default claims; groups are sent as object ids.
    "entra": AttributeNames(
        email=f"{_MS_CLAIMS}/emailaddress",
        given_name=f"{_MS_CLAIMS}/givenname",
        surname=f"{_MS_CLAIMS}/surname",
        display_name="http://schemas.microsoft.com/identity/claims/displayname",
        groups="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        subject="http://schemas.microsoft.com/identity/claims/objectidentifier",
    ),
}


@dataclass(frozen=True, slots=True)
class IdpMetadata:
    """What an IdP's metadata document says about it."""

    entity_id: str
    sso_url: str
    sso_binding: Binding
    slo_url: str | None
    certificates: tuple[str, ...]
    name_id_formats: tuple[str, ...]
    wants_signed_requests: bool


@dataclass(frozen=True, slots=True)
class SamlSettings:
    """A SAML connection's settings, as stored in IdpConnection.settings (no secrets)."""

    idp_entity_id: str
    sso_url: str
    sso_binding: Binding = Binding.REDIRECT
    slo_url: str | None = None
    # Base64 DER X.509 certificates; several during a rollover.
    certificates: tuple[str, ...] = ()
    name_id_format: str = NAMEID_UNSPECIFIED
    attributes: AttributeNames = field(default_factory=AttributeNames)
    want_assertions_signed: bool = True
    want_response_signed: bool = False
    allow_idp_initiated: bool = False
    encrypt_assertions: bool = False
    sign_requests: bool = False
    # The SP certificate (public; its private key lives in encrypted_secrets).
    sp_certificate: str | None = None
    preset: str | None = None

    @classmethod
    def from_metadata(
        cls,
        metadata: IdpMetadata,
        preset: str | None = None,
        attributes: AttributeNames | None = None,
    ) -> Self:
        """Settings for a new connection from the IdP's metadata and an optional preset."""
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}")
        names = attributes or (PRESETS[preset] if preset else AttributeNames())
        return cls(
            idp_entity_id=metadata.entity_id,
            sso_url=metadata.sso_url,
            sso_binding=metadata.sso_binding,
            slo_url=metadata.slo_url,
            certificates=metadata.certificates,
            name_id_format=_preferred_name_id_format(metadata.name_id_formats, names),
            attributes=names,
            sign_requests=metadata.wants_signed_requests,
            preset=preset,
        )

    def with_metadata(self, metadata: IdpMetadata) -> Self:
        """These settings with the IdP's endpoints and certificates from fresh metadata."""
        return replace(
            self,
            idp_entity_id=metadata.entity_id,
            sso_url=metadata.sso_url,
            sso_binding=metadata.sso_binding,
            slo_url=metadata.slo_url,
            certificates=metadata.certificates,
            sign_requests=metadata.wants_signed_requests,
        )

    def to_json(self) -> dict[str, object]:
        """The JSON stored in IdpConnection.settings."""
        names = self.attributes
        return {
            "idp_entity_id": self.idp_entity_id,
            "sso_url": self.sso_url,
            "sso_binding": self.sso_binding.value,
            "slo_url": self.slo_url,
            "certificates": list(self.certificates),
            "name_id_format": self.name_id_format,
            "email_attribute": names.email,
            "given_name_attribute": names.given_name,
            "surname_attribute": names.surname,
            "display_name_attribute": names.display_name,
            "groups_attribute": names.groups,
            "subject_attribute": names.subject,
            "want_assertions_signed": self.want_assertions_signed,
            "want_response_signed": self.want_response_signed,
            "allow_idp_initiated": self.allow_idp_initiated,
            "encrypt_assertions": self.encrypt_assertions,
            "sign_requests": self.sign_requests,
            "sp_certificate": self.sp_certificate,
            "preset": self.preset,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        """Settings read back from the database; ValueError if they are not usable."""
        certificates = data.get("certificates") or []
        if not isinstance(certificates, list) or not all(isinstance(c, str) for c in certificates):
            raise ValueError("certificates must be a list of strings")
        signing = _bool(data, "want_assertions_signed", True)
        response_signed = _bool(data, "want_response_signed", False)
        return cls(
            idp_entity_id=_required_str(data, "idp_entity_id"),
            sso_url=_required_str(data, "sso_url"),
            sso_binding=Binding(_optional_str(data, "sso_binding") or Binding.REDIRECT),
            slo_url=_optional_str(data, "slo_url"),
            certificates=tuple(certificates),
            name_id_format=_optional_str(data, "name_id_format") or NAMEID_UNSPECIFIED,
            attributes=AttributeNames(
                email=_optional_str(data, "email_attribute"),
                given_name=_optional_str(data, "given_name_attribute"),
                surname=_optional_str(data, "surname_attribute"),
                display_name=_optional_str(data, "display_name_attribute"),
                groups=_optional_str(data, "groups_attribute"),
                subject=_optional_str(data, "subject_attribute"),
            ),
            # At least one signature is always required: an unsigned setup fails closed to
            # "assertions signed".
            want_assertions_signed=signing or not response_signed,
            want_response_signed=response_signed,
            allow_idp_initiated=_bool(data, "allow_idp_initiated", False),
            encrypt_assertions=_bool(data, "encrypt_assertions", False),
            sign_requests=_bool(data, "sign_requests", False),
            sp_certificate=_optional_str(data, "sp_certificate"),
            preset=_optional_str(data, "preset"),
        )


def _required_str(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is required")
    return value


def _optional_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _bool(data: Mapping[str, object], key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def _preferred_name_id_format(offered: Sequence[str], names: AttributeNames) -> str:
    # With a subject attribute the NameID does not matter: let the IdP send its default.
    if names.subject is not None:
        return NAMEID_UNSPECIFIED
    for wanted in (NAMEID_PERSISTENT, NAMEID_EMAIL):
        if wanted in offered:
            return wanted
    return NAMEID_UNSPECIFIED


@dataclass(frozen=True, slots=True)
class ServiceProvider:
    """Our side of one connection: its URLs and, when it has one, its key pair (PEM)."""

    entity_id: str
    acs_url: str
    slo_url: str
    private_key: str | None = None
    certificate: str | None = None

    @property
    def has_key(self) -> bool:
        return bool(self.private_key and self.certificate)
