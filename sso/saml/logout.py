"""Single logout: the LogoutRequest and LogoutResponse we send, and checking the IdP's."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.logout_response import OneLogin_Saml2_Logout_Response
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from sso.saml.errors import Reason, SamlError
from sso.saml.library import library_refusals, library_settings, request_data
from sso.saml.parsing import (
    CLOCK_SKEW,
    NS,
    SIGNATURE_ALGORITHMS,
    STATUS_SUCCESS,
    check_algorithms,
    decode_post,
    decode_redirect,
    element_text,
    parse_instant,
    strict_parse,
    unique_ids,
)
from sso.saml.settings import NAMEID_EMAIL, NAMEID_TRANSIENT, Binding, SamlSettings, ServiceProvider

# How old a logout message may be (IssueInstant), beyond the clock skew.
MAX_LOGOUT_AGE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class LogoutRedirect:
    """Where to send the browser with a logout message; `request_id` of our own request."""

    url: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class LogoutMessage:
    """A logout message as it reached our SLO URL: its binding, its fields and, for the
    Redirect binding, the query string exactly as the IdP encoded it (its signature covers it)."""

    binding: Binding
    values: Mapping[str, str]
    query_string: str = ""


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


# Each kind of logout message: the form field that carries it and python3-saml's class for it.
_KINDS: dict[str, tuple[str, Any]] = {
    "LogoutRequest": ("SAMLRequest", OneLogin_Saml2_Logout_Request),
    "LogoutResponse": ("SAMLResponse", OneLogin_Saml2_Logout_Response),
}


def build_logout_request(
    idp: SamlSettings, sp: ServiceProvider, name_id: str
) -> LogoutRedirect | None:
    """An SP-initiated LogoutRequest (signed when we have a key); None without an IdP SLO URL."""
    if not idp.slo_url:
        return None
    settings = library_settings(idp, sp, for_logout=True)
    request = OneLogin_Saml2_Logout_Request(
        settings, name_id=name_id, name_id_format=idp.name_id_format
    )
    request_id = str(request.id)
    parameters = {"SAMLRequest": str(request.get_request()), "RelayState": request_id}
    return LogoutRedirect(_redirect(idp.slo_url, sp, settings, parameters), request_id)


def build_logout_response(
    idp: SamlSettings, sp: ServiceProvider, in_response_to: str, relay_state: str | None
) -> LogoutRedirect | None:
    """The LogoutResponse answering an IdP's request; None without an IdP SLO URL."""
    if not idp.slo_url:
        return None
    settings = library_settings(idp, sp, for_logout=True)
    response = OneLogin_Saml2_Logout_Response(settings)
    response.build(in_response_to)
    parameters = {"SAMLResponse": str(response.get_response())}
    if relay_state:
        parameters["RelayState"] = relay_state
    return LogoutRedirect(_redirect(idp.slo_url, sp, settings, parameters))


def _redirect(slo_url: str, sp: ServiceProvider, settings: Any, parameters: dict[str, str]) -> str:
    """The IdP's SLO URL carrying a message by the Redirect binding, signed when we have a key."""
    if sp.has_key:
        auth = OneLogin_Saml2_Auth(request_data(sp.slo_url), settings)
        if "SAMLRequest" in parameters:
            auth.add_request_signature(parameters, C.RSA_SHA256)
        else:
            auth.add_response_signature(parameters, C.RSA_SHA256)
    return str(OneLogin_Saml2_Utils.redirect(slo_url, parameters, request_data(sp.slo_url)))


def verify_logout_request(
    idp: SamlSettings, sp: ServiceProvider, message: LogoutMessage
) -> IdpLogoutRequest:
    """An IdP-initiated LogoutRequest, checked; `is_signed` says whether it may end every
    session of the user it names (an unsigned one only ends the browser's own session)."""
    request, xml, is_signed = _verified(idp, sp, "LogoutRequest", message)
    with library_refusals():
        name_id_data: dict[str, str] = OneLogin_Saml2_Logout_Request.get_nameid_data(
            xml, sp.private_key
        )
    name_id = (name_id_data.get("Value") or "").strip() or None
    return IdpLogoutRequest(
        request_id=str(request.id),
        name_id=name_id,
        name_id_format=name_id_data.get("Format"),
        is_signed=is_signed,
        relay_state=message.values.get("RelayState"),
        keep_until=datetime.now(UTC) + MAX_LOGOUT_AGE + 2 * CLOCK_SKEW,
    )


def verify_logout_response(idp: SamlSettings, sp: ServiceProvider, message: LogoutMessage) -> str:
    """The InResponseTo of the IdP's successful LogoutResponse; SamlError otherwise."""
    response, _, _ = _verified(idp, sp, "LogoutResponse", message)
    with library_refusals():
        status = response.get_status()
        in_response_to = response.get_in_response_to()
    if status != STATUS_SUCCESS:
        raise SamlError(Reason.STATUS_NOT_SUCCESS)
    if not in_response_to:
        raise SamlError(Reason.IN_RESPONSE_TO_MISMATCH)
    return str(in_response_to)


def _verified(
    idp: SamlSettings, sp: ServiceProvider, kind: str, message: LogoutMessage
) -> tuple[Any, bytes, bool]:
    """A logout message checked by our rules, its signature and then python3-saml's strict
    validation; returns (the library's object for it, its XML, whether it was signed)."""
    if not idp.certificates:
        raise SamlError(Reason.NO_CERTIFICATE)
    field_name, library_class = _KINDS[kind]
    xml, root = _read(idp, sp, kind, message.binding, message.values.get(field_name))
    settings = library_settings(idp, sp, for_logout=True)
    if message.binding == Binding.REDIRECT and "Signature" in message.values:
        _check_redirect_signature(sp, settings, field_name, message)
        is_signed = True
    elif message.binding == Binding.POST and root.xpath("ds:Signature", namespaces=NS):
        _check_post_signature(idp, kind, root, xml)
        is_signed = True
    elif root.xpath("//ds:Signature", namespaces=NS):
        raise SamlError(Reason.INVALID_SIGNATURE)
    else:
        is_signed = False
    with library_refusals():
        library_message = library_class(settings, base64.b64encode(xml).decode())
        library_message.is_valid(request_data(sp.slo_url), raise_exceptions=True)
    return library_message, xml, is_signed


def _read(
    idp: SamlSettings, sp: ServiceProvider, kind: str, binding: Binding, encoded: str | None
) -> tuple[bytes, Any]:
    """Decode and parse a logout message; our rules on its element, issuer, destination and age."""
    xml = decode_redirect(encoded) if binding == Binding.REDIRECT else decode_post(encoded)
    root = strict_parse(xml)
    if root.tag != f"{{{NS['samlp']}}}{kind}" or not root.get("ID"):
        raise SamlError(Reason.INVALID_MESSAGE)
    check_algorithms(root, Reason.DEPRECATED_ALGORITHM)
    unique_ids(root)
    issuers = root.xpath("saml:Issuer", namespaces=NS)
    if len(issuers) != 1 or element_text(issuers[0]) != idp.idp_entity_id:
        raise SamlError(Reason.WRONG_ISSUER)
    destination = root.get("Destination")
    if destination is not None and destination != sp.slo_url:
        raise SamlError(Reason.WRONG_DESTINATION)
    # IssueInstant is required by the schema; a message from long ago is a replay.
    issued_at = parse_instant(root.get("IssueInstant"))
    now = datetime.now(UTC)
    if issued_at is None or issued_at > now + CLOCK_SKEW:
        raise SamlError(Reason.NOT_YET_VALID)
    if issued_at < now - CLOCK_SKEW - MAX_LOGOUT_AGE:
        raise SamlError(Reason.EXPIRED)
    return xml, root


def _check_redirect_signature(
    sp: ServiceProvider, settings: Any, field_name: str, message: LogoutMessage
) -> None:
    """A Redirect-binding signature: over the query string, with an allowed algorithm."""
    if message.values.get("SigAlg") not in SIGNATURE_ALGORITHMS:
        raise SamlError(Reason.DEPRECATED_ALGORITHM)
    auth = OneLogin_Saml2_Auth(
        request_data(sp.slo_url, get_data=message.values, query_string=message.query_string),
        settings,
    )
    check = (
        auth.validate_request_signature
        if field_name == "SAMLRequest"
        else auth.validate_response_signature
    )
    if not check(dict(message.values)):
        raise SamlError(Reason.INVALID_SIGNATURE)


def _check_post_signature(idp: SamlSettings, kind: str, root: Any, xml: bytes) -> None:
    """A POST-binding signature: over the whole message element, by an IdP certificate."""
    references = root.xpath("ds:Signature/ds:SignedInfo/ds:Reference/@URI", namespaces=NS)
    if [str(r) for r in references] != [f"#{root.get('ID')}"]:
        raise SamlError(Reason.INVALID_SIGNATURE)
    certificates = [OneLogin_Saml2_Utils.format_cert(c) for c in idp.certificates]
    if not OneLogin_Saml2_Utils.validate_sign(
        xml, None, None, None, xpath=f"/samlp:{kind}/ds:Signature", multicerts=certificates
    ):
        raise SamlError(Reason.INVALID_SIGNATURE)


def subject_for_name_id(idp: SamlSettings, name_id: str, name_id_format: str | None) -> str | None:
    """The login subject a NameID stands for, when the subject is the NameID at all."""
    if idp.attributes.subject is not None or name_id_format == NAMEID_TRANSIENT:
        return None
    return name_id.lower() if name_id_format == NAMEID_EMAIL else name_id
