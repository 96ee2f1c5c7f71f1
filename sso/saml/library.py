"""python3-saml's settings, request data and validation errors, in our terms."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError as LibraryValidationError
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from sso.saml.errors import Reason, SamlError
from sso.saml.settings import Binding, SamlSettings, ServiceProvider

LIBRARY_BINDINGS = {
    Binding.REDIRECT: C.BINDING_HTTP_REDIRECT,
    Binding.POST: C.BINDING_HTTP_POST,
}


def library_settings(
    idp: SamlSettings, sp: ServiceProvider, for_logout: bool = False, sp_only: bool = False
) -> Any:
    """python3-saml's settings object for this connection; SamlError when it refuses them."""
    # A connection without a certificate fails closed: nothing it receives can be trusted.
    if not idp.certificates and not sp_only:
        raise SamlError(Reason.NO_CERTIFICATE)
    data: dict[str, Any] = {
        "strict": True,
        "debug": False,
        "sp": _sp_section(idp, sp),
        "idp": _idp_section(idp),
        "security": _security_section(idp, sp, for_logout),
    }
    try:
        return OneLogin_Saml2_Settings(data, sp_validation_only=sp_only)
    except Exception:
        raise SamlError(Reason.MISCONFIGURED) from None


def _sp_section(idp: SamlSettings, sp: ServiceProvider) -> dict[str, Any]:
    return {
        "entityId": sp.entity_id,
        "assertionConsumerService": {"url": sp.acs_url, "binding": C.BINDING_HTTP_POST},
        "singleLogoutService": {"url": sp.slo_url, "binding": C.BINDING_HTTP_REDIRECT},
        "NameIDFormat": idp.name_id_format,
        "x509cert": sp.certificate or "",
        "privateKey": sp.private_key or "",
    }


def _idp_section(idp: SamlSettings) -> dict[str, Any]:
    section: dict[str, Any] = {
        "entityId": idp.idp_entity_id,
        "singleSignOnService": {"url": idp.sso_url, "binding": LIBRARY_BINDINGS[idp.sso_binding]},
        "x509cert": "",
        "x509certMulti": {"signing": list(idp.certificates)},
    }
    if idp.slo_url:
        section["singleLogoutService"] = {"url": idp.slo_url, "binding": C.BINDING_HTTP_REDIRECT}
    return section


def _security_section(idp: SamlSettings, sp: ServiceProvider, for_logout: bool) -> dict[str, Any]:
    has_key = sp.has_key
    return {
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
    }


def request_data(
    url: str,
    get_data: Mapping[str, str] | None = None,
    post_data: Mapping[str, str] | None = None,
    query_string: str | None = None,
) -> dict[str, Any]:
    """The request as python3-saml wants to see it, built from one of our own URLs."""
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


# The library's validation codes, mapped to our reasons. Anything about signatures,
# decryption or document structure falls through to INVALID_SIGNATURE.
LIBRARY_REASONS: dict[int, Reason] = {
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


def library_reason(error: Exception) -> Reason:
    """Our reason for an error python3-saml raised (or one of ours raised inside it)."""
    if isinstance(error, SamlError):
        return error.reason
    if isinstance(error, LibraryValidationError):
        return LIBRARY_REASONS.get(error.code, Reason.INVALID_SIGNATURE)
    return Reason.INVALID_SIGNATURE


@contextmanager
def library_refusals() -> Iterator[None]:
    """Run python3-saml's own validation: whatever it raises becomes a SamlError with our reason."""
    try:
        yield
    except Exception as error:
        raise SamlError(library_reason(error)) from None
