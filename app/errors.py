"""Errors the service raises; adapters translate them into their protocol's format."""

from __future__ import annotations


class ProvisioningError(Exception):
    """A change the service refuses; the message is safe to show to the caller."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(ProvisioningError):
    """The resource does not exist in this organization (or belongs to another one)."""


class ConflictError(ProvisioningError):
    """The change would break a uniqueness rule."""


class InvalidChangeError(ProvisioningError):
    """The change is malformed or not allowed."""


class PreconditionFailedError(ProvisioningError):
    """The resource's version differs from the one the caller expected."""


class LoginRefusedError(ProvisioningError):
    """A login the service will not accept; `reason` is a short code for the audit trail."""

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason
