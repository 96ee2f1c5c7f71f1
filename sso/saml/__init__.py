"""SAML 2.0 for one IdP connection: a typed wrapper over python3-saml.

This package is the only code that touches `onelogin`, `xmlsec` and `lxml`; everything untyped
stops here. Nothing in it reads the database or the clock of another worker: the views keep the
single-use request ids and the replay cache in the database.

One module per capability: `settings` (what a connection stores), `certificates`, `metadata`
(IdP metadata import, our SP metadata), `login` (AuthnRequest, verifying a Response), `logout`
(single logout), over `parsing` (strict XML) and `library` (python3-saml's settings and errors).
"""

from sso.saml.certificates import (
    certificate_expires_at,
    certificate_fingerprint,
    generate_sp_key_pair,
    normalize_certificate,
)
from sso.saml.errors import DETAILS, Reason, SamlError
from sso.saml.login import AuthnRequest, VerifiedAssertion, build_authn_request, verify_response
from sso.saml.logout import (
    IdpLogoutRequest,
    LogoutMessage,
    LogoutRedirect,
    build_logout_request,
    build_logout_response,
    subject_for_name_id,
    verify_logout_request,
    verify_logout_response,
)
from sso.saml.metadata import fetch_idp_metadata, parse_idp_metadata, sp_metadata
from sso.saml.parsing import CLOCK_SKEW
from sso.saml.settings import (
    NAME_ID_FORMATS,
    NAMEID_EMAIL,
    NAMEID_PERSISTENT,
    NAMEID_TRANSIENT,
    NAMEID_UNSPECIFIED,
    PRESETS,
    AttributeNames,
    Binding,
    IdpMetadata,
    SamlSettings,
    ServiceProvider,
)

__all__ = [
    "CLOCK_SKEW",
    "DETAILS",
    "NAME_ID_FORMATS",
    "NAMEID_EMAIL",
    "NAMEID_PERSISTENT",
    "NAMEID_TRANSIENT",
    "NAMEID_UNSPECIFIED",
    "PRESETS",
    "AttributeNames",
    "AuthnRequest",
    "Binding",
    "IdpLogoutRequest",
    "IdpMetadata",
    "LogoutMessage",
    "LogoutRedirect",
    "Reason",
    "SamlError",
    "SamlSettings",
    "ServiceProvider",
    "VerifiedAssertion",
    "build_authn_request",
    "build_logout_request",
    "build_logout_response",
    "certificate_expires_at",
    "certificate_fingerprint",
    "fetch_idp_metadata",
    "generate_sp_key_pair",
    "normalize_certificate",
    "parse_idp_metadata",
    "sp_metadata",
    "subject_for_name_id",
    "verify_logout_request",
    "verify_logout_response",
    "verify_response",
]
