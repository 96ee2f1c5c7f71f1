"""Errors raised by the licensing rules; the provisioning service maps them to its own."""


class LicensingError(Exception):
    """Base class for every error raised by `licensing`."""


class InvalidRoleError(LicensingError):
    """A custom role is malformed or clashes with another role of the catalogue."""


class UnknownRoleError(LicensingError):
    """A role key is not in the organization's catalogue."""


class InvalidValueError(LicensingError):
    """A rule, contract, threshold or total is outside its allowed range."""
