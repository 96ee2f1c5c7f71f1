"""Sign-in: the AuthnRequest we send and the verification of the IdP's Response.

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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from sso.saml.errors import Reason, SamlError
from sso.saml.library import library_refusals, library_settings, request_data
from sso.saml.parsing import (
    CLOCK_SKEW,
    MAX_ID_LENGTH,
    NS,
    STATUS_SUCCESS,
    check_algorithms,
    decode_post,
    element_text,
    parse_instant,
    refuse_comments,
    strict_parse,
    unique_ids,
)
from sso.saml.settings import NAMEID_EMAIL, NAMEID_TRANSIENT, Binding, SamlSettings, ServiceProvider

# Entra ID replaces the groups claim by this link when a user is in more than 150 groups
# ("Configure group claims for applications", group overage).
ENTRA_GROUPS_OVERAGE = "http://schemas.microsoft.com/claims/groups.link"
MAX_SUBJECT_LENGTH = 512
_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
_RESPONSE_TAG = f"{{{NS['samlp']}}}Response"
_ASSERTION_TAG = f"{{{NS['saml']}}}Assertion"


@dataclass(frozen=True, slots=True)
class AuthnRequest:
    """An SP-initiated login: redirect to `url`, or POST `form` to `url`."""

    request_id: str
    binding: Binding
    url: str
    form: dict[str, str]


def build_authn_request(idp: SamlSettings, sp: ServiceProvider) -> AuthnRequest:
    """An AuthnRequest whose RelayState is its own id (the stored request's opaque handle)."""
    settings = library_settings(idp, sp)
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
    auth = OneLogin_Saml2_Auth(request_data(sp.acs_url), settings)
    if sign:
        auth.add_request_signature(parameters, C.RSA_SHA256)
    url = OneLogin_Saml2_Utils.redirect(idp.sso_url, parameters, request_data(sp.acs_url))
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


def verify_response(
    idp: SamlSettings, sp: ServiceProvider, encoded: str | None
) -> VerifiedAssertion:
    """Verify a POSTed SAMLResponse for this connection; SamlError says why it is refused."""
    if not idp.certificates:
        raise SamlError(Reason.NO_CERTIFICATE)
    raw = decode_post(encoded)
    outer = strict_parse(raw)
    _check_outer(outer, idp, sp)
    settings = library_settings(idp, sp)

    # Stage 1: decryption and signatures, one uniform error for every failure.
    try:
        response = OneLogin_Saml2_Response(settings, base64.b64encode(raw).decode())
        document = response.get_xml_document()
        if response.encrypted:
            refuse_comments(document, Reason.INVALID_SIGNATURE)
            check_algorithms(document, Reason.INVALID_SIGNATURE)
            unique_ids(document)
        response_signed = _verify_signatures(response, idp)
    except Exception:
        raise SamlError(Reason.INVALID_SIGNATURE) from None

    # Stage 2: our rules, on the verified assertion.
    assertions = document.xpath("/samlp:Response/saml:Assertion", namespaces=NS)
    if len(assertions) != 1:
        raise SamlError(Reason.ASSERTION_COUNT)
    assertion = assertions[0]
    keep_until, in_response_to = _check_assertion(outer, assertion, idp, sp, response_signed)

    # Stage 3: the library's strict validation as a second opinion.
    with library_refusals():
        response.is_valid(request_data(sp.acs_url), raise_exceptions=True)
        name_id_data: dict[str, str] = response.get_nameid_data() or {}
        raw_attributes: dict[str, list[Any]] = response.get_attributes()
        session_index = response.get_session_index()

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
    check_algorithms(root, Reason.DEPRECATED_ALGORITHM)
    unique_ids(root)
    codes = root.xpath("samlp:Status/samlp:StatusCode/@Value", namespaces=NS)
    if len(codes) != 1 or str(codes[0]) != STATUS_SUCCESS:
        raise SamlError(Reason.STATUS_NOT_SUCCESS)
    # Destination is required (SAML Bindings §3.5.5.2 only asks for it on signed messages).
    if root.get("Destination") != sp.acs_url:
        raise SamlError(Reason.WRONG_DESTINATION)
    for issuer in root.xpath("saml:Issuer", namespaces=NS):
        if element_text(issuer) != idp.idp_entity_id:
            raise SamlError(Reason.WRONG_ISSUER)
    plain = root.xpath("//saml:Assertion", namespaces=NS)
    encrypted = root.xpath("//saml:EncryptedAssertion", namespaces=NS)
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
    issuers = assertion.xpath("saml:Issuer", namespaces=NS)
    if len(issuers) != 1 or element_text(issuers[0]) != idp.idp_entity_id:
        raise SamlError(Reason.WRONG_ISSUER)
    assertion_id = assertion.get("ID")
    if not assertion_id or len(assertion_id) > MAX_ID_LENGTH:
        raise SamlError(Reason.INVALID_MESSAGE)

    conditions = assertion.xpath("saml:Conditions", namespaces=NS)
    if len(conditions) != 1:
        raise SamlError(Reason.INVALID_CONDITIONS)
    # Audience is required; every AudienceRestriction must name us (SAML Core §2.5.1.4).
    restrictions = conditions[0].xpath("saml:AudienceRestriction", namespaces=NS)
    if not restrictions:
        raise SamlError(Reason.WRONG_AUDIENCE)
    for restriction in restrictions:
        audiences = {element_text(a) for a in restriction.xpath("saml:Audience", namespaces=NS)}
        if sp.entity_id not in audiences:
            raise SamlError(Reason.WRONG_AUDIENCE)
    deadlines = _check_window(conditions[0], now)

    confirmations = assertion.xpath(
        "saml:Subject/saml:SubjectConfirmation[@Method=$method]/saml:SubjectConfirmationData",
        namespaces=NS,
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
    not_before = parse_instant(node.get("NotBefore"))
    not_on_or_after = parse_instant(node.get("NotOnOrAfter"))
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
