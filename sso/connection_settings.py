"""Building a connection's settings and secrets from an admin's input: the one place that
`connection add-saml`, `update-saml`, `add-oidc`, `set-oidc-secret` and `/api/v1/connections`
share. Each caller words the refusals (ValueError here) in its own protocol."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from app import crypto
from app.web import settings
from sso import saml
from sso.connections import CLIENT_SECRET, SP_KEY_SECRET
from sso.oidc import OidcSettings, ProviderMetadata

SAML_DEFAULT_NAMES = {"okta": "Okta SAML", "entra": "Entra ID SAML"}
# Which signatures the IdP must send (`--signed`).
SIGNED_CHOICES = ("assertion", "response", "both")

# ------------------------------------------------------------------- SAML


def saml_default_name(preset: str | None) -> str:
    """A new SAML connection's name when the admin gives none."""
    return SAML_DEFAULT_NAMES.get(preset or "", "SAML")


def attribute_names(
    base: saml.AttributeNames, overrides: Mapping[str, str | None]
) -> saml.AttributeNames:
    """`base` with the attribute names the admin gave (None keeps one, '' clears it)."""
    names = base
    for key, value in overrides.items():
        if value is not None:
            names = replace(names, **{key: value.strip() or None})
    return names


def with_signing(idp: saml.SamlSettings, signed: str) -> saml.SamlSettings:
    """The settings requiring the signatures `signed` names (one of SIGNED_CHOICES)."""
    return replace(
        idp,
        want_assertions_signed=signed in ("assertion", "both"),
        want_response_signed=signed in ("response", "both"),
    )


def new_saml_settings(
    metadata: saml.IdpMetadata,
    *,
    preset: str | None,
    attribute_overrides: Mapping[str, str | None],
    signed: str = "assertion",
    allow_idp_initiated: bool = False,
    encrypt_assertions: bool = False,
    sign_requests: bool = False,
    name_id_format: str | None = None,
) -> saml.SamlSettings:
    """A new SAML connection's settings from the IdP's metadata, a preset and the admin's
    choices; requests are signed when the admin or the IdP's metadata asks for it."""
    base = saml.PRESETS[preset] if preset else saml.AttributeNames()
    names = attribute_names(base, attribute_overrides)
    idp = saml.SamlSettings.from_metadata(metadata, preset=preset, attributes=names)
    idp = with_signing(replace(idp, allow_idp_initiated=allow_idp_initiated), signed)
    if name_id_format is not None:
        idp = replace(idp, name_id_format=saml.NAME_ID_FORMATS[name_id_format])
    return replace(
        idp,
        encrypt_assertions=encrypt_assertions,
        sign_requests=sign_requests or idp.sign_requests,
    )


@dataclass(frozen=True, slots=True)
class SamlChange:
    """A change to a SAML connection's settings; None (or nothing) leaves a setting as it is."""

    metadata: saml.IdpMetadata | None = None
    added_certificates: tuple[str, ...] = ()
    # SHA-256 fingerprints as `fingerprint_key` spells them.
    removed_fingerprints: frozenset[str] = frozenset()
    attribute_overrides: Mapping[str, str | None] = field(default_factory=dict)
    signed: str | None = None
    allow_idp_initiated: bool | None = None
    encrypt_assertions: bool | None = None
    sign_requests: bool | None = None


def fingerprint_key(fingerprint: str) -> str:
    """A certificate fingerprint as admins may type it, in one spelling (no colons, upper case)."""
    return fingerprint.replace(":", "").strip().upper()


def changed_saml_settings(idp: saml.SamlSettings, change: SamlChange) -> saml.SamlSettings:
    """The settings with the change applied; ValueError when no IdP certificate would be left."""
    if change.metadata is not None:
        idp = idp.with_metadata(change.metadata)
    certificates = [
        c
        for c in dict.fromkeys([*idp.certificates, *change.added_certificates])
        if fingerprint_key(saml.certificate_fingerprint(c)) not in change.removed_fingerprints
    ]
    if not certificates:
        raise ValueError("a SAML connection needs at least one IdP certificate")
    names = attribute_names(idp.attributes, change.attribute_overrides)
    idp = replace(idp, certificates=tuple(certificates), attributes=names)
    if change.signed is not None:
        idp = with_signing(idp, change.signed)
    if change.allow_idp_initiated is not None:
        idp = replace(idp, allow_idp_initiated=change.allow_idp_initiated)
    if change.encrypt_assertions is not None:
        idp = replace(idp, encrypt_assertions=change.encrypt_assertions)
    if change.sign_requests is not None:
        idp = replace(idp, sign_requests=change.sign_requests)
    return idp


def with_sp_key(
    idp: saml.SamlSettings, org_slug: str, stored_secrets: Collection[str] = ()
) -> tuple[saml.SamlSettings, dict[str, str] | None]:
    """The settings with a key pair of the connection's own when they need one (encrypted
    assertions or signed requests) and have none: the certificate goes into the settings, the
    private key into the returned secrets, encrypted. The secrets are None when no key was made."""
    if not (idp.encrypt_assertions or idp.sign_requests):
        return idp, None
    if SP_KEY_SECRET in stored_secrets and idp.sp_certificate:
        return idp, None
    key_pem, certificate_pem = saml.generate_sp_key_pair(f"blue-sso-{org_slug}")
    encrypted = crypto.encrypt(settings().secret_key, key_pem)
    return replace(idp, sp_certificate=certificate_pem), {SP_KEY_SECRET: encrypted}


# ------------------------------------------------------------------- OIDC


def oidc_default_name(config: OidcSettings) -> str:
    """A new OIDC connection's name when the admin gives none."""
    return f"OIDC {urlsplit(config.issuer).hostname}"


def admits_every_tenant(metadata: ProviderMetadata, config: OidcSettings) -> bool:
    """Whether the issuer is Entra ID's multi-tenant one and no tenant was named: refused."""
    return metadata.is_multi_tenant and not config.allowed_tenants


def encrypted_client_secret(client_secret: str) -> dict[str, str]:
    """An OIDC connection's secrets holding this client secret, encrypted."""
    return {CLIENT_SECRET: crypto.encrypt(settings().secret_key, client_secret)}
