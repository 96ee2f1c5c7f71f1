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


class UnavailableError(ProvisioningError):
    """The database cannot serve the request now: a lost connection, a statement or lock
    timeout, no free connection. Nothing was changed unless `before_commit` is False (the
    commit itself failed: its outcome is unknown). Adapters answer 503 with Retry-After."""

    def __init__(self, detail: str, before_commit: bool = True, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.before_commit = before_commit
        self.retry_after = retry_after
        self.connection_lost = False
