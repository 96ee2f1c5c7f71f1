"""Why a SAML message is refused: the reason the audit trail records and the words people see."""

from __future__ import annotations

from enum import StrEnum


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
