"""SAML 2.0 for one IdP connection: a typed wrapper over python3-saml.

This is the only module that touches `onelogin`, `xmlsec` and `lxml`; everything untyped stops
here. Nothing in it reads the database or the clock of another worker: the views keep the
single-use request ids and the replay cache in the database.

A response is trusted in stages, and nothing from inside an (encrypted) assertion is used or
reported before its signature has been verified against the connection's certificates:

0. the outer document: size, strict parsing (no DOCTYPE, entities, comments or processing
   instructions), one assertion, allowed algorithms, Success status, exact Destination;
1. decryption and signatures: every failure here gives ONE uniform error, so that a tampered
   ciphertext cannot be told apart from a bad signature (XML Encryption padding oracles);
2. our own rules on the verified assertion: Audience and Recipient required and exact, issuer,
   time window with a bounded clock skew, InResponseTo from the signed part;
3. python3-saml's own strict validation as a second opinion.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree  # type: ignore[import-untyped]
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError as LibraryValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAME_ID_FORMATS = {
    "persistent": NAMEID_PERSISTENT,
    "email": NAMEID_EMAIL,
    "unspecified": NAMEID_UNSPECIFIED,
}

# Entra ID replaces the groups claim by this link when a user is in more than 150 groups
# ("Configure group claims for applications", group overage).
ENTRA_GROUPS_OVERAGE = "http://schemas.microsoft.com/claims/groups.link"

# How far the IdP's clock may be from ours, both ways.
CLOCK_SKEW = timedelta(minutes=3)
# Real responses are a few kilobytes (a large Entra groups claim stays under 100 KB).
MAX_MESSAGE_BYTES = 512 * 1024
MAX_ID_LENGTH = 256
MAX_SUBJECT_LENGTH = 512
METADATA_FETCH_TIMEOUT_SECONDS = 10
MAX_METADATA_BYTES = 5 * 1024 * 1024
# How old a logout message may be (IssueInstant), beyond the clock skew.
MAX_LOGOUT_AGE = timedelta(minutes=10)

_STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
_NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}
_RESPONSE_TAG = f"{{{_NS['samlp']}}}Response"
_ASSERTION_TAG = f"{{{_NS['saml']}}}Assertion"

# Allow-lists: SHA-1 (RFC 6194), DSA, RSA PKCS#1 v1.5 key transport (Bleichenbacher) and 3DES
# are refused, and so are XPath/XSLT transforms.
_SIGNATURE_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
_DIGEST_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
_CANONICALIZATION_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/2006/12/xml-c14n11",
    }
)
_TRANSFORMS = _CANONICALIZATION_ALGORITHMS | {
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
}
_ENCRYPTION_ALGORITHMS = frozenset(
    {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2009/xmlenc11#aes192-gcm",
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
        "http://www.w3.org/2009/xmlenc11#rsa-oaep",
    }
)


# ------------------------------------------------------------------ errors


class Reason(StrEnum):
    """Why a SAML message was refused: the code the audit trail records."""

    NO_CERTIFICATE = "no_certificate"
    MISCONFIGURED = "connection_misconfigured"
    INVALID_MESSAGE = "invalid_message"
    FORBIDDEN_XML = "forbidden_xml"
    DEPRECATED_ALGORITHM = "deprecated_algorithm"
    # Decryption and signature failures share this one reason on purpose.
    INVALID_SIGNATURE = "invalid_signature"
    STATUS_NOT_SUCCESS = "status_not_success"
    ASSERTION_COUNT = "wrong_assertion_count"
    NOT_ENCRYPTED = "assertion_not_encrypted"
    WRONG_DESTINATION = "wrong_destination"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_RECIPIENT = "wrong_recipient"
    INVALID_SUBJECT_CONFIRMATION = "invalid_subject_confirmation"
    INVALID_CONDITIONS = "invalid_conditions"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    IN_RESPONSE_TO_MISMATCH = "in_response_to_mismatch"
    MISSING_SUBJECT = "missing_subject"
    TRANSIENT_SUBJECT = "transient_subject"
    INVALID_ATTRIBUTES = "invalid_attributes"


DETAILS: dict[Reason, str] = {
    Reason.NO_CERTIFICATE: "This sign-in connection has no identity provider certificate, so no "
    "sign-in can be trusted. Ask your administrator to import the IdP metadata again.",
    Reason.MISCONFIGURED: "This sign-in connection is not configured correctly. Ask your "
    "administrator to check it.",
    Reason.INVALID_MESSAGE: "The sign-in response was missing or malformed.",
    Reason.FORBIDDEN_XML: "The sign-in response contained XML constructs that are not allowed.",
    Reason.DEPRECATED_ALGORITHM: "The sign-in response used a weak or deprecated algorithm "
    "(for example SHA-1). Configure your identity provider to use SHA-256.",
    Reason.INVALID_SIGNATURE: "The sign-in response could not be verified.",
    Reason.STATUS_NOT_SUCCESS: "Your identity provider did not sign you in.",
    Reason.ASSERTION_COUNT: "The sign-in response must contain exactly one assertion.",
    Reason.NOT_ENCRYPTED: "This connection requires encrypted assertions, and the assertion "
    "was not encrypted.",
    Reason.WRONG_DESTINATION: "The sign-in response was addressed to another service.",
    Reason.WRONG_ISSUER: "The sign-in response came from an identity provider that is not the "
    "one configured for this connection.",
    Reason.WRONG_AUDIENCE: "The sign-in response was issued for another service.",
    Reason.WRONG_RECIPIENT: "The sign-in response was issued for another address.",
    Reason.INVALID_SUBJECT_CONFIRMATION: "The sign-in response's subject confirmation is not "
    "valid (it may have expired). Please sign in again.",
    Reason.INVALID_CONDITIONS: "The sign-in response had invalid conditions.",
    Reason.NOT_YET_VALID: "The sign-in response is not valid yet. Check the clocks of your "
    "computer and identity provider.",
    Reason.EXPIRED: "The sign-in response has expired. Please sign in again.",
    Reason.IN_RESPONSE_TO_MISMATCH: "The sign-in response does not answer the sign-in request.",
    Reason.MISSING_SUBJECT: "The sign-in response did not identify the user.",
    Reason.TRANSIENT_SUBJECT: "The identity provider sent a transient NameID, which cannot "
    "identify a user across sign-ins. Configure a persistent or email NameID.",
    Reason.INVALID_ATTRIBUTES: "The sign-in response had ambiguous or unsupported attributes.",
}


class SamlError(Exception):
    """A refused SAML message: `reason` for the audit trail, `detail` for the person."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.detail = DETAILS[reason]


# ----------------------------------------------------------------- settings


class Binding(StrEnum):
    REDIRECT = "redirect"
    POST = "post"


_LIBRARY_BINDINGS = {
    Binding.REDIRECT: C.BINDING_HTTP_REDIRECT,
    Binding.POST: C.BINDING_HTTP_POST,
}


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


# ------------------------------------------------------------- certificates


def normalize_certificate(text: str) -> str:
    """A certificate (PEM or bare base64 DER) as base64 DER; ValueError if unusable."""
    body = "".join(
        line.strip()
        for line in text.strip().splitlines()
        if line.strip() and not line.startswith("-----")
    )
    try:
        der = base64.b64decode(body, validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as error:
        raise ValueError("not an X.509 certificate") from error
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"the certificate's RSA key has {key.key_size} bits; 2048 needed")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("only RSA and EC signing certificates are supported")
    return base64.b64encode(der).decode()


def certificate_fingerprint(certificate: str) -> str:
    """The SHA-256 fingerprint of a base64 DER certificate, as colon-separated hex."""
    digest = hashlib.sha256(base64.b64decode(certificate)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certificate_expires_at(certificate: str) -> datetime:
    """When a base64 DER certificate stops being valid."""
    return x509.load_der_x509_certificate(base64.b64decode(certificate)).not_valid_after_utc


def generate_sp_key_pair(common_name: str) -> tuple[str, str]:
    """A new RSA-3072 private key and self-signed certificate (PEM) for one connection."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


# ----------------------------------------------------------------- metadata


def fetch_idp_metadata(url: str) -> bytes:
    """Download IdP metadata over HTTPS; call it before opening a transaction."""
    if urllib.parse.urlsplit(url).scheme != "https":
        raise ValueError("the metadata URL must use https")
    try:
        with urllib.request.urlopen(url, timeout=METADATA_FETCH_TIMEOUT_SECONDS) as response:
            # The certificates we will trust come from here: no redirect to plain http.
            if urllib.parse.urlsplit(response.geturl()).scheme != "https":
                raise ValueError("the metadata URL redirected away from https")
            xml: bytes = response.read(MAX_METADATA_BYTES + 1)
    except (OSError, ValueError) as error:
        raise ValueError(f"could not fetch IdP metadata from {url}: {error}") from None
    if len(xml) > MAX_METADATA_BYTES:
        raise ValueError("the IdP metadata is too large")
    return xml


def parse_idp_metadata(xml: str | bytes) -> IdpMetadata:
    """The IdP's entity id, endpoints and signing certificates; ValueError if unusable."""
    raw = xml.encode() if isinstance(xml, str) else xml
    if len(raw) > MAX_METADATA_BYTES:
        raise ValueError("the IdP metadata is too large")
    try:
        # Comments are harmless here (Shibboleth writes them); DTDs and entities are not.
        _strict_parse(raw, allow_comments=True, limit=MAX_METADATA_BYTES)
    except SamlError as error:
        if error.reason is Reason.FORBIDDEN_XML:
            raise ValueError("a DOCTYPE or entity declaration is not allowed in metadata") from None
        raise ValueError("the metadata is not well-formed XML") from None
    try:
        data: dict[str, Any] = {}
        binding = Binding.REDIRECT
        for binding in (Binding.REDIRECT, Binding.POST):
            data = OneLogin_Saml2_IdPMetadataParser.parse(
                raw, required_sso_binding=_LIBRARY_BINDINGS[binding]
            )
            if data.get("idp", {}).get("singleSignOnService"):
                break
        root = etree.fromstring(raw, parser=_parser())
    except Exception as error:
        raise ValueError(f"not SAML IdP metadata: {error}") from None
    idp = data.get("idp") or {}
    entity_id = idp.get("entityId")
    sso = idp.get("singleSignOnService") or {}
    if not entity_id or not sso.get("url"):
        raise ValueError("the metadata has no IdP entity id or single sign-on URL")
    multi = idp.get("x509certMulti") or {}
    raw_certificates = multi.get("signing") or ([idp["x509cert"]] if idp.get("x509cert") else [])
    certificates = tuple(dict.fromkeys(normalize_certificate(c) for c in raw_certificates))
    if not certificates:
        raise ValueError("the metadata has no signing certificate")
    formats = tuple(
        (node.text or "").strip()
        for node in root.xpath("//md:IDPSSODescriptor/md:NameIDFormat", namespaces=_NS)
    )
    return IdpMetadata(
        entity_id=str(entity_id),
        sso_url=str(sso["url"]),
        sso_binding=binding,
        slo_url=(idp.get("singleLogoutService") or {}).get("url"),
        certificates=certificates,
        name_id_formats=formats,
        wants_signed_requests=bool((data.get("security") or {}).get("authnRequestsSigned")),
    )


def sp_metadata(idp: SamlSettings, sp: ServiceProvider) -> str:
    """Our SP metadata for the IdP; signed with the connection's key when it has one."""
    settings = _library_settings(idp, sp, sp_only=True)
    metadata = settings.get_sp_metadata()
    errors = settings.validate_metadata(metadata)
    if errors:
        raise SamlError(Reason.MISCONFIGURED)
    return metadata.decode() if isinstance(metadata, bytes) else str(metadata)


# -------------------------------------------------------- library plumbing


def _library_settings(
    idp: SamlSettings, sp: ServiceProvider, for_logout: bool = False, sp_only: bool = False
) -> Any:
    # A connection without a certificate fails closed: nothing it receives can be trusted.
    if not idp.certificates and not sp_only:
        raise SamlError(Reason.NO_CERTIFICATE)
    has_key = sp.has_key
    data: dict[str, Any] = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": sp.entity_id,
            "assertionConsumerService": {"url": sp.acs_url, "binding": C.BINDING_HTTP_POST},
            "singleLogoutService": {"url": sp.slo_url, "binding": C.BINDING_HTTP_REDIRECT},
            "NameIDFormat": idp.name_id_format,
            "x509cert": sp.certificate or "",
            "privateKey": sp.private_key or "",
        },
        "idp": {
            "entityId": idp.idp_entity_id,
            "singleSignOnService": {
                "url": idp.sso_url,
                "binding": _LIBRARY_BINDINGS[idp.sso_binding],
            },
            "x509cert": "",
            "x509certMulti": {"signing": list(idp.certificates)},
        },
        "security": {
            "authnRequestsSigned": idp.sign_requests and has_key,
            "logoutRequestSigned": has_key,
            "logoutResponseSigned": has_key,
            "signMetadata": has_key,
            # Logout messages are checked by verify_logout_*; the flag would demand a
            # Redirect-binding signature even for the POST binding.
            "wantMessagesSigned": idp.want_response_signed and not for_logout,
            "wantAssertionsSigned": idp.want_assertions_signed,
            "wantAssertionsEncrypted": idp.encrypt_assertions,
            "wantNameId": idp.attributes.subject is None,
            "wantNameIdEncrypted": False,
            "wantAttributeStatement": False,
            # Asking for PasswordProtectedTransport (the library's default) makes Entra ID
            # and Okta refuse users who sign in with MFA or passkeys.
            "requestedAuthnContext": False,
            "rejectDeprecatedAlgorithm": True,
            # Two Attribute elements with one name make "the" email ambiguous.
            "allowRepeatAttributeName": False,
            "signatureAlgorithm": C.RSA_SHA256,
            "digestAlgorithm": C.SHA256,
            # Our own URLs come from BLUE_BASE_URL, which may be http://localhost in tests.
            "allowSingleLabelDomains": True,
        },
    }
    if idp.slo_url:
        data["idp"]["singleLogoutService"] = {
            "url": idp.slo_url,
            "binding": C.BINDING_HTTP_REDIRECT,
        }
    try:
        return OneLogin_Saml2_Settings(data, sp_validation_only=sp_only)
    except Exception:
        raise SamlError(Reason.MISCONFIGURED) from None


def _request_data(
    url: str,
    get_data: Mapping[str, str] | None = None,
    post_data: Mapping[str, str] | None = None,
    query_string: str | None = None,
) -> dict[str, Any]:
    # The library rebuilds "the current URL" from these; they come from our configured
    # URLs, never from the Host header a proxy may rewrite.
    parts = urllib.parse.urlsplit(url)
    data: dict[str, Any] = {
        "https": "on" if parts.scheme == "https" else "off",
        "http_host": parts.netloc,
        "script_name": parts.path,
        "get_data": dict(get_data or {}),
        "post_data": dict(post_data or {}),
    }
    if query_string:
        # Redirect-binding signatures cover the query string exactly as the IdP encoded it.
        data["query_string"] = query_string
        data["validate_signature_from_qs"] = True
    return data


def _parser() -> Any:
    # A parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
    )


def _strict_parse(raw: bytes, allow_comments: bool = False, limit: int = MAX_MESSAGE_BYTES) -> Any:
    """Parse XML that may contain no DOCTYPE, entity, comment or processing instruction.

    Comments are refused rather than stripped: a comment inside a NameID
    (`admin@acme.example<!---->.evil.example`) is the classic way to make two parsers
    disagree about a signed value.
    """
    if len(raw) > limit:
        raise SamlError(Reason.INVALID_MESSAGE)
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise SamlError(Reason.FORBIDDEN_XML)
    try:
        root = etree.fromstring(raw, parser=_parser())
    except (etree.XMLSyntaxError, ValueError):
        raise SamlError(Reason.INVALID_MESSAGE) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SamlError(Reason.FORBIDDEN_XML)
    if not allow_comments:
        _refuse_comments(root, Reason.FORBIDDEN_XML)
    return root


def _refuse_comments(root: Any, reason: Reason) -> None:
    # XPath, not iteration: python3-saml's element class hides comments from iterators.
    tree = root.getroottree()
    if tree.xpath("//comment() | //processing-instruction()") or any(
        isinstance(node, etree._Entity) for node in tree.iter()
    ):
        raise SamlError(reason)


def _check_algorithms(root: Any, reason: Reason) -> None:
    """Every signature, digest, transform and encryption algorithm is on our allow-list."""
    for xpath, allowed in (
        ("//ds:SignatureMethod/@Algorithm", _SIGNATURE_ALGORITHMS),
        ("//ds:Reference/ds:DigestMethod/@Algorithm", _DIGEST_ALGORITHMS),
        ("//ds:CanonicalizationMethod/@Algorithm", _CANONICALIZATION_ALGORITHMS),
        ("//ds:Transform/@Algorithm", _TRANSFORMS),
        ("//xenc:EncryptionMethod/@Algorithm", _ENCRYPTION_ALGORITHMS),
    ):
        for algorithm in root.xpath(xpath, namespaces=_NS):
            if str(algorithm) not in allowed:
                raise SamlError(reason)
    signature_methods = root.xpath("//ds:Signature/ds:SignedInfo", namespaces=_NS)
    for signed_info in signature_methods:
        if not signed_info.xpath("ds:SignatureMethod", namespaces=_NS):
            raise SamlError(reason)


def _unique_ids(root: Any) -> None:
    ids = [str(value) for value in root.xpath("//@ID")]
    if len(ids) != len(set(ids)) or any(len(i) > MAX_ID_LENGTH for i in ids):
        # Two elements with one ID let a signature reference resolve to the wrong one.
        raise SamlError(Reason.INVALID_SIGNATURE)


def _decode_post(encoded: str | None) -> bytes:
    if not encoded:
        raise SamlError(Reason.INVALID_MESSAGE)
    compact = "".join(encoded.split())
    if len(compact) > MAX_MESSAGE_BYTES * 4 // 3 + 4:
        raise SamlError(Reason.INVALID_MESSAGE)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise SamlError(Reason.INVALID_MESSAGE) from None


def _decode_redirect(encoded: str | None) -> bytes:
    raw = _decode_post(encoded)
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(raw, MAX_MESSAGE_BYTES)
    except zlib.error:
        raise SamlError(Reason.INVALID_MESSAGE) from None
    if inflater.unconsumed_tail:
        # A deflate bomb: far more XML than any real logout message.
        raise SamlError(Reason.INVALID_MESSAGE)
    return xml


def _text(node: Any) -> str | None:
    # Comments were refused, so text is the whole content of the element.
    if node is None:
        return None
    value = node.text
    return value.strip() if isinstance(value, str) and value.strip() else None


def _parse_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SamlError(Reason.INVALID_CONDITIONS) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


# ---------------------------------------------------------------- sign-in


@dataclass(frozen=True, slots=True)
class AuthnRequest:
    """An SP-initiated login: redirect to `url`, or POST `form` to `url`."""

    request_id: str
    binding: Binding
    url: str
    form: dict[str, str]


def build_authn_request(idp: SamlSettings, sp: ServiceProvider) -> AuthnRequest:
    """An AuthnRequest whose RelayState is its own id (the stored request's opaque handle)."""
    settings = _library_settings(idp, sp)
    request = OneLogin_Saml2_Authn_Request(settings, set_nameid_policy=True)
    request_id = str(request.get_id())
    sign = settings.get_security_data()["authnRequestsSigned"]
    if idp.sso_binding == Binding.POST:
        xml = request.get_xml()
        if sign:
            xml = OneLogin_Saml2_Utils.add_sign(
                xml, sp.private_key, sp.certificate, False, C.RSA_SHA256, C.SHA256
            )
        xml_bytes = xml if isinstance(xml, bytes) else str(xml).encode()
        form = {"SAMLRequest": base64.b64encode(xml_bytes).decode(), "RelayState": request_id}
        return AuthnRequest(request_id, Binding.POST, idp.sso_url, form)
    parameters: dict[str, str] = {
        "SAMLRequest": request.get_request(deflate=True),
        "RelayState": request_id,
    }
    auth = OneLogin_Saml2_Auth(_request_data(sp.acs_url), settings)
    if sign:
        auth.add_request_signature(parameters, C.RSA_SHA256)
    url = OneLogin_Saml2_Utils.redirect(idp.sso_url, parameters, _request_data(sp.acs_url))
    return AuthnRequest(request_id, Binding.REDIRECT, str(url), {})


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    """What a verified response asserts; `keep_until` bounds its replay-cache entry."""

    assertion_id: str
    in_response_to: str | None
    subject: str
    name_id: str | None
    name_id_format: str | None
    session_index: str | None
    email: str | None
    given_name: str | None
    family_name: str | None
    display_name: str | None
    groups: tuple[str, ...] | None
    groups_overage: bool
    keep_until: datetime


# The library's validation codes, mapped to our reasons. Anything about signatures,
# decryption or document structure falls through to INVALID_SIGNATURE.
_LIBRARY_REASONS: dict[int, Reason] = {
    LibraryValidationError.UNSUPPORTED_SAML_VERSION: Reason.INVALID_MESSAGE,
    LibraryValidationError.MISSING_ID: Reason.INVALID_MESSAGE,
    LibraryValidationError.INVALID_XML_FORMAT: Reason.INVALID_MESSAGE,
    LibraryValidationError.WRONG_NUMBER_OF_ASSERTIONS: Reason.ASSERTION_COUNT,
    LibraryValidationError.MISSING_STATUS: Reason.STATUS_NOT_SUCCESS,
    LibraryValidationError.MISSING_STATUS_CODE: Reason.STATUS_NOT_SUCCESS,
    LibraryValidationError.STATUS_CODE_IS_NOT_SUCCESS: Reason.STATUS_NOT_SUCCESS,
    LibraryValidationError.WRONG_INRESPONSETO: Reason.IN_RESPONSE_TO_MISMATCH,
    LibraryValidationError.NO_ENCRYPTED_ASSERTION: Reason.NOT_ENCRYPTED,
    LibraryValidationError.MISSING_CONDITIONS: Reason.INVALID_CONDITIONS,
    LibraryValidationError.ASSERTION_TOO_EARLY: Reason.NOT_YET_VALID,
    LibraryValidationError.ASSERTION_EXPIRED: Reason.EXPIRED,
    LibraryValidationError.SESSION_EXPIRED: Reason.EXPIRED,
    LibraryValidationError.RESPONSE_EXPIRED: Reason.EXPIRED,
    LibraryValidationError.WRONG_NUMBER_OF_AUTHSTATEMENTS: Reason.INVALID_MESSAGE,
    LibraryValidationError.ENCRYPTED_ATTRIBUTES: Reason.INVALID_ATTRIBUTES,
    LibraryValidationError.DUPLICATED_ATTRIBUTE_NAME_FOUND: Reason.INVALID_ATTRIBUTES,
    LibraryValidationError.WRONG_DESTINATION: Reason.WRONG_DESTINATION,
    LibraryValidationError.EMPTY_DESTINATION: Reason.WRONG_DESTINATION,
    LibraryValidationError.WRONG_AUDIENCE: Reason.WRONG_AUDIENCE,
    LibraryValidationError.SP_NAME_QUALIFIER_NAME_MISMATCH: Reason.WRONG_AUDIENCE,
    LibraryValidationError.ISSUER_MULTIPLE_IN_RESPONSE: Reason.WRONG_ISSUER,
    LibraryValidationError.ISSUER_NOT_FOUND_IN_ASSERTION: Reason.WRONG_ISSUER,
    LibraryValidationError.WRONG_ISSUER: Reason.WRONG_ISSUER,
    # Our own stage already compared Recipient exactly; what the library still finds here
    # is its zero-skew time check on the confirmation.
    LibraryValidationError.WRONG_SUBJECTCONFIRMATION: Reason.INVALID_SUBJECT_CONFIRMATION,
    LibraryValidationError.NO_NAMEID: Reason.MISSING_SUBJECT,
    LibraryValidationError.EMPTY_NAMEID: Reason.MISSING_SUBJECT,
    LibraryValidationError.DEPRECATED_SIGNATURE_METHOD: Reason.DEPRECATED_ALGORITHM,
    LibraryValidationError.DEPRECATED_DIGEST_METHOD: Reason.DEPRECATED_ALGORITHM,
}


def _library_reason(error: Exception) -> Reason:
    if isinstance(error, SamlError):
        return error.reason
    if isinstance(error, LibraryValidationError):
        return _LIBRARY_REASONS.get(error.code, Reason.INVALID_SIGNATURE)
    return Reason.INVALID_SIGNATURE


def verify_response(
    idp: SamlSettings, sp: ServiceProvider, encoded: str | None
) -> VerifiedAssertion:
    """Verify a POSTed SAMLResponse for this connection; SamlError says why it is refused."""
    if not idp.certificates:
        raise SamlError(Reason.NO_CERTIFICATE)
    raw = _decode_post(encoded)
    outer = _strict_parse(raw)
    _check_outer(outer, idp, sp)
    settings = _library_settings(idp, sp)

    # Stage 1: decryption and signatures, one uniform error for every failure.
    try:
        response = OneLogin_Saml2_Response(settings, base64.b64encode(raw).decode())
        document = response.get_xml_document()
        if response.encrypted:
            _refuse_comments(document, Reason.INVALID_SIGNATURE)
            _check_algorithms(document, Reason.INVALID_SIGNATURE)
            _unique_ids(document)
        response_signed = _verify_signatures(response, idp)
    except Exception:
        raise SamlError(Reason.INVALID_SIGNATURE) from None

    # Stage 2: our rules, on the verified assertion.
    assertions = document.xpath("/samlp:Response/saml:Assertion", namespaces=_NS)
    if len(assertions) != 1:
        raise SamlError(Reason.ASSERTION_COUNT)
    assertion = assertions[0]
    keep_until, in_response_to = _check_assertion(outer, assertion, idp, sp, response_signed)

    # Stage 3: the library's strict validation as a second opinion.
    try:
        response.is_valid(_request_data(sp.acs_url), raise_exceptions=True)
        name_id_data: dict[str, str] = response.get_nameid_data() or {}
        raw_attributes: dict[str, list[Any]] = response.get_attributes()
        session_index = response.get_session_index()
    except Exception as error:
        raise SamlError(_library_reason(error)) from None

    attributes = {
        name: tuple(v.strip() for v in values if isinstance(v, str) and v.strip())
        for name, values in raw_attributes.items()
    }
    return _claims(
        idp,
        assertion_id=str(assertion.get("ID")),
        in_response_to=in_response_to,
        name_id=(name_id_data.get("Value") or "").strip() or None,
        name_id_format=name_id_data.get("Format"),
        session_index=str(session_index) if session_index else None,
        attributes=attributes,
        keep_until=keep_until,
    )


def _check_outer(root: Any, idp: SamlSettings, sp: ServiceProvider) -> None:
    """Checks on the outer document that need no trust in it: refusing is always safe."""
    if root.tag != _RESPONSE_TAG or root.get("Version") != "2.0" or not root.get("ID"):
        raise SamlError(Reason.INVALID_MESSAGE)
    _check_algorithms(root, Reason.DEPRECATED_ALGORITHM)
    _unique_ids(root)
    codes = root.xpath("samlp:Status/samlp:StatusCode/@Value", namespaces=_NS)
    if len(codes) != 1 or str(codes[0]) != _STATUS_SUCCESS:
        raise SamlError(Reason.STATUS_NOT_SUCCESS)
    # Destination is required (SAML Bindings §3.5.5.2 only asks for it on signed messages).
    if root.get("Destination") != sp.acs_url:
        raise SamlError(Reason.WRONG_DESTINATION)
    for issuer in root.xpath("saml:Issuer", namespaces=_NS):
        if _text(issuer) != idp.idp_entity_id:
            raise SamlError(Reason.WRONG_ISSUER)
    plain = root.xpath("//saml:Assertion", namespaces=_NS)
    encrypted = root.xpath("//saml:EncryptedAssertion", namespaces=_NS)
    if len(plain) + len(encrypted) != 1:
        raise SamlError(Reason.ASSERTION_COUNT)
    if idp.encrypt_assertions and not encrypted:
        raise SamlError(Reason.NOT_ENCRYPTED)


def _verify_signatures(response: Any, idp: SamlSettings) -> bool:
    """Verify the required signatures against the configured certificates only.

    Returns whether the Response element itself is signed.
    """
    signed = response.process_signed_elements()
    response_signed = _RESPONSE_TAG in signed
    assertion_signed = _ASSERTION_TAG in signed
    if not (response_signed or assertion_signed):
        raise SamlError(Reason.INVALID_SIGNATURE)
    if idp.want_response_signed and not response_signed:
        raise SamlError(Reason.INVALID_SIGNATURE)
    if idp.want_assertions_signed and not assertion_signed:
        raise SamlError(Reason.INVALID_SIGNATURE)
    certificates = [OneLogin_Saml2_Utils.format_cert(c) for c in idp.certificates]
    checks = []
    if response_signed:
        checks.append((response.document, OneLogin_Saml2_Utils.RESPONSE_SIGNATURE_XPATH))
    if assertion_signed:
        checks.append((response.get_xml_document(), OneLogin_Saml2_Utils.ASSERTION_SIGNATURE_XPATH))
    for document, xpath in checks:
        # No fingerprint and no certificate from the message: only ours can verify.
        if not OneLogin_Saml2_Utils.validate_sign(
            document, None, None, None, xpath=xpath, multicerts=certificates
        ):
            raise SamlError(Reason.INVALID_SIGNATURE)
    return response_signed


def _check_assertion(
    outer: Any, assertion: Any, idp: SamlSettings, sp: ServiceProvider, response_signed: bool
) -> tuple[datetime, str | None]:
    """Our rules on the verified assertion; returns (keep in replay cache until, InResponseTo)."""
    now = datetime.now(UTC)
    issuers = assertion.xpath("saml:Issuer", namespaces=_NS)
    if len(issuers) != 1 or _text(issuers[0]) != idp.idp_entity_id:
        raise SamlError(Reason.WRONG_ISSUER)
    assertion_id = assertion.get("ID")
    if not assertion_id or len(assertion_id) > MAX_ID_LENGTH:
        raise SamlError(Reason.INVALID_MESSAGE)

    conditions = assertion.xpath("saml:Conditions", namespaces=_NS)
    if len(conditions) != 1:
        raise SamlError(Reason.INVALID_CONDITIONS)
    # Audience is required; every AudienceRestriction must name us (SAML Core §2.5.1.4).
    restrictions = conditions[0].xpath("saml:AudienceRestriction", namespaces=_NS)
    if not restrictions:
        raise SamlError(Reason.WRONG_AUDIENCE)
    for restriction in restrictions:
        audiences = {_text(a) for a in restriction.xpath("saml:Audience", namespaces=_NS)}
        if sp.entity_id not in audiences:
            raise SamlError(Reason.WRONG_AUDIENCE)
    deadlines = _check_window(conditions[0], now)

    confirmations = assertion.xpath(
        "saml:Subject/saml:SubjectConfirmation[@Method=$method]/saml:SubjectConfirmationData",
        namespaces=_NS,
        method=_BEARER,
    )
    if not confirmations:
        raise SamlError(Reason.WRONG_RECIPIENT)
    # Recipient is required and compared exactly (the library accepts any URL containing ours).
    confirmations = [c for c in confirmations if c.get("Recipient") == sp.acs_url]
    if not confirmations:
        raise SamlError(Reason.WRONG_RECIPIENT)
    confirmation = confirmations[0]
    # Web Browser SSO Profile §4.1.4.2: a bearer confirmation carries NotOnOrAfter.
    if confirmation.get("NotOnOrAfter") is None:
        raise SamlError(Reason.INVALID_CONDITIONS)
    deadlines += _check_window(confirmation, now)

    # InResponseTo comes from the signed part: the assertion's confirmation, or the Response
    # element only when it is itself signed.
    signed_irt = confirmation.get("InResponseTo")
    outer_irt = outer.get("InResponseTo")
    if signed_irt is not None and outer_irt is not None and signed_irt != outer_irt:
        raise SamlError(Reason.IN_RESPONSE_TO_MISMATCH)
    if signed_irt is None and outer_irt is not None and not response_signed:
        raise SamlError(Reason.IN_RESPONSE_TO_MISMATCH)
    in_response_to = signed_irt or outer_irt
    return max(deadlines) + CLOCK_SKEW, in_response_to


def _check_window(node: Any, now: datetime) -> list[datetime]:
    not_before = _parse_instant(node.get("NotBefore"))
    not_on_or_after = _parse_instant(node.get("NotOnOrAfter"))
    if not_before is not None and now + CLOCK_SKEW < not_before:
        raise SamlError(Reason.NOT_YET_VALID)
    if not_on_or_after is not None and now - CLOCK_SKEW >= not_on_or_after:
        raise SamlError(Reason.EXPIRED)
    return [not_on_or_after] if not_on_or_after is not None else []


def _single(attributes: Mapping[str, tuple[str, ...]], name: str | None) -> str | None:
    if name is None:
        return None
    values = tuple(dict.fromkeys(attributes.get(name, ())))
    if len(values) > 1:
        raise SamlError(Reason.INVALID_ATTRIBUTES)
    return values[0] if values else None


def _claims(
    idp: SamlSettings,
    *,
    assertion_id: str,
    in_response_to: str | None,
    name_id: str | None,
    name_id_format: str | None,
    session_index: str | None,
    attributes: Mapping[str, tuple[str, ...]],
    keep_until: datetime,
) -> VerifiedAssertion:
    names = idp.attributes
    if names.subject is not None:
        subject = _single(attributes, names.subject)
    elif name_id is None:
        subject = None
    elif name_id_format == NAMEID_TRANSIENT:
        raise SamlError(Reason.TRANSIENT_SUBJECT)
    else:
        # An email-format NameID is this connection's subject; emails ignore case.
        subject = name_id.lower() if name_id_format == NAMEID_EMAIL else name_id
    if not subject or len(subject) > MAX_SUBJECT_LENGTH:
        raise SamlError(Reason.MISSING_SUBJECT)
    email = _single(attributes, names.email)
    if email is None and name_id_format == NAMEID_EMAIL:
        email = name_id
    overage = ENTRA_GROUPS_OVERAGE in attributes
    groups: tuple[str, ...] | None = None
    if names.groups is not None and not overage:
        groups = tuple(dict.fromkeys(attributes.get(names.groups, ())))
    return VerifiedAssertion(
        assertion_id=assertion_id,
        in_response_to=in_response_to,
        subject=subject,
        name_id=name_id,
        name_id_format=name_id_format,
        session_index=session_index,
        email=email,
        given_name=_single(attributes, names.given_name),
        family_name=_single(attributes, names.surname),
        display_name=_single(attributes, names.display_name),
        groups=groups,
        groups_overage=overage,
        keep_until=keep_until,
    )


# --------------------------------------------------------------- sign-out


@dataclass(frozen=True, slots=True)
class LogoutRedirect:
    """Where to send the browser with a logout message; `request_id` of our own request."""

    url: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class IdpLogoutRequest:
    """A verified LogoutRequest from the IdP."""

    request_id: str
    name_id: str | None
    name_id_format: str | None
    is_signed: bool
    relay_state: str | None
    # Until when the request could be replayed: keep its id that long.
    keep_until: datetime


def build_logout_request(
    idp: SamlSettings, sp: ServiceProvider, name_id: str
) -> LogoutRedirect | None:
    """An SP-initiated LogoutRequest (signed when we have a key); None without an IdP SLO URL."""
    if not idp.slo_url:
        return None
    settings = _library_settings(idp, sp, for_logout=True)
    request = OneLogin_Saml2_Logout_Request(
        settings, name_id=name_id, name_id_format=idp.name_id_format
    )
    request_id = str(request.id)
    parameters: dict[str, str] = {"SAMLRequest": request.get_request(), "RelayState": request_id}
    if sp.has_key:
        OneLogin_Saml2_Auth(_request_data(sp.slo_url), settings).add_request_signature(
            parameters, C.RSA_SHA256
        )
    url = OneLogin_Saml2_Utils.redirect(idp.slo_url, parameters, _request_data(sp.slo_url))
    return LogoutRedirect(str(url), request_id)


def build_logout_response(
    idp: SamlSettings, sp: ServiceProvider, in_response_to: str, relay_state: str | None
) -> LogoutRedirect | None:
    """The LogoutResponse answering an IdP's request; None without an IdP SLO URL."""
    if not idp.slo_url:
        return None
    settings = _library_settings(idp, sp, for_logout=True)
    response = OneLogin_Saml2_Logout_Response(settings)
    response.build(in_response_to)
    parameters: dict[str, str] = {"SAMLResponse": response.get_response()}
    if relay_state:
        parameters["RelayState"] = relay_state
    if sp.has_key:
        OneLogin_Saml2_Auth(_request_data(sp.slo_url), settings).add_response_signature(
            parameters, C.RSA_SHA256
        )
    url = OneLogin_Saml2_Utils.redirect(idp.slo_url, parameters, _request_data(sp.slo_url))
    return LogoutRedirect(str(url))


def _logout_message(
    idp: SamlSettings,
    sp: ServiceProvider,
    kind: str,
    binding: Binding,
    values: Mapping[str, str],
    query_string: str,
) -> tuple[Any, bytes, bool]:
    """Parse and signature-check a logout message; returns (settings, xml, is_signed)."""
    if not idp.certificates:
        raise SamlError(Reason.NO_CERTIFICATE)
    field_name = "SAMLRequest" if kind == "LogoutRequest" else "SAMLResponse"
    encoded = values.get(field_name)
    xml = _decode_redirect(encoded) if binding == Binding.REDIRECT else _decode_post(encoded)
    root = _strict_parse(xml)
    if root.tag != f"{{{_NS['samlp']}}}{kind}" or not root.get("ID"):
        raise SamlError(Reason.INVALID_MESSAGE)
    _check_algorithms(root, Reason.DEPRECATED_ALGORITHM)
    _unique_ids(root)
    issuers = root.xpath("saml:Issuer", namespaces=_NS)
    if len(issuers) != 1 or _text(issuers[0]) != idp.idp_entity_id:
        raise SamlError(Reason.WRONG_ISSUER)
    destination = root.get("Destination")
    if destination is not None and destination != sp.slo_url:
        raise SamlError(Reason.WRONG_DESTINATION)
    # IssueInstant is required by the schema; a message from long ago is a replay.
    issued_at = _parse_instant(root.get("IssueInstant"))
    now = datetime.now(UTC)
    if issued_at is None or issued_at > now + CLOCK_SKEW:
        raise SamlError(Reason.NOT_YET_VALID)
    if issued_at < now - CLOCK_SKEW - MAX_LOGOUT_AGE:
        raise SamlError(Reason.EXPIRED)
    settings = _library_settings(idp, sp, for_logout=True)
    is_signed = False
    if binding == Binding.REDIRECT and "Signature" in values:
        if values.get("SigAlg") not in _SIGNATURE_ALGORITHMS:
            raise SamlError(Reason.DEPRECATED_ALGORITHM)
        auth = OneLogin_Saml2_Auth(
            _request_data(sp.slo_url, get_data=values, query_string=query_string), settings
        )
        check = (
            auth.validate_request_signature
            if field_name == "SAMLRequest"
            else (auth.validate_response_signature)
        )
        if not check(dict(values)):
            raise SamlError(Reason.INVALID_SIGNATURE)
        is_signed = True
    elif binding == Binding.POST and root.xpath("ds:Signature", namespaces=_NS):
        references = root.xpath("ds:Signature/ds:SignedInfo/ds:Reference/@URI", namespaces=_NS)
        if [str(r) for r in references] != [f"#{root.get('ID')}"]:
            raise SamlError(Reason.INVALID_SIGNATURE)
        certificates = [OneLogin_Saml2_Utils.format_cert(c) for c in idp.certificates]
        if not OneLogin_Saml2_Utils.validate_sign(
            xml, None, None, None, xpath=f"/samlp:{kind}/ds:Signature", multicerts=certificates
        ):
            raise SamlError(Reason.INVALID_SIGNATURE)
        is_signed = True
    elif root.xpath("//ds:Signature", namespaces=_NS):
        raise SamlError(Reason.INVALID_SIGNATURE)
    return settings, xml, is_signed


def verify_logout_request(
    idp: SamlSettings,
    sp: ServiceProvider,
    binding: Binding,
    values: Mapping[str, str],
    query_string: str = "",
) -> IdpLogoutRequest:
    """An IdP-initiated LogoutRequest, checked; `is_signed` says whether it may end every
    session of the user it names (an unsigned one only ends the browser's own session)."""
    settings, xml, is_signed = _logout_message(
        idp, sp, "LogoutRequest", binding, values, query_string
    )
    try:
        request = OneLogin_Saml2_Logout_Request(settings, base64.b64encode(xml).decode())
        request.is_valid(_request_data(sp.slo_url), raise_exceptions=True)
        name_id_data: dict[str, str] = OneLogin_Saml2_Logout_Request.get_nameid_data(
            xml, sp.private_key
        )
    except Exception as error:
        raise SamlError(_library_reason(error)) from None
    name_id = (name_id_data.get("Value") or "").strip() or None
    return IdpLogoutRequest(
        request_id=str(request.id),
        name_id=name_id,
        name_id_format=name_id_data.get("Format"),
        is_signed=is_signed,
        relay_state=values.get("RelayState"),
        keep_until=datetime.now(UTC) + MAX_LOGOUT_AGE + 2 * CLOCK_SKEW,
    )


def verify_logout_response(
    idp: SamlSettings,
    sp: ServiceProvider,
    binding: Binding,
    values: Mapping[str, str],
    query_string: str = "",
) -> str:
    """The InResponseTo of the IdP's successful LogoutResponse; SamlError otherwise."""
    settings, xml, _ = _logout_message(idp, sp, "LogoutResponse", binding, values, query_string)
    try:
        response = OneLogin_Saml2_Logout_Response(settings, base64.b64encode(xml).decode())
        response.is_valid(_request_data(sp.slo_url, get_data={}), raise_exceptions=True)
        status = response.get_status()
        in_response_to = response.get_in_response_to()
    except Exception as error:
        raise SamlError(_library_reason(error)) from None
    if status != _STATUS_SUCCESS:
        raise SamlError(Reason.STATUS_NOT_SUCCESS)
    if not in_response_to:
        raise SamlError(Reason.IN_RESPONSE_TO_MISMATCH)
    return str(in_response_to)


def subject_for_name_id(idp: SamlSettings, name_id: str, name_id_format: str | None) -> str | None:
    """The login subject a NameID stands for, when the subject is the NameID at all."""
    if idp.attributes.subject is not None or name_id_format == NAMEID_TRANSIENT:
        return None
    return name_id.lower() if name_id_format == NAMEID_EMAIL else name_id
