"""What the console's Connections page needs of the SSO adapter, as a narrow interface.

`app/` never imports `sso/` (pyproject.toml's import-linter contracts): reading IdP metadata,
OIDC discovery, the values to paste into the IdP and the test sign-in are sso/'s work. So the
console names what it needs here, `sso.console_setup.ConsoleSetup` implements it, and
`create_app()` (the composition root) puts that object in `app.extensions[EXTENSION]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import current_app

from app.models import IdpConnection

EXTENSION = "console_sso_setup"


class SetupRefusedError(Exception):
    """The admin's connection form cannot be used; `detail` says why, for the form."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SamlForm:
    """A new SAML connection as the admin typed it: metadata pasted, uploaded or at a URL."""

    name: str | None
    preset: str | None
    metadata_xml: bytes | None
    metadata_url: str | None
    groups_attribute: str | None
    jit: bool


@dataclass(frozen=True, slots=True)
class OidcForm:
    """A new OIDC connection as the admin typed it."""

    name: str | None
    issuer: str
    client_id: str
    client_secret: str
    groups_claim: str | None
    entra_tenants: tuple[str, ...]
    jit: bool


@dataclass(frozen=True, slots=True)
class NewConnection:
    """A connection ready to store: settings without secrets, secrets already encrypted."""

    name: str
    protocol: str
    settings: dict[str, object]
    secrets: dict[str, str]
    jit: bool


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """New settings and (encrypted) secrets for an existing connection; None keeps them."""

    settings: dict[str, object] | None
    secrets: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class SetupFact:
    """One line of what a connection is set to (IdP entity id, issuer, a certificate...)."""

    label: str
    value: str


class ConnectionSetup(Protocol):
    """The SSO adapter's side of the Connections page."""

    def new_saml(self, form: SamlForm, org_slug: str) -> NewConnection:
        """Settings from the IdP's metadata (fetched when given a URL: call it with no
        transaction open); SetupRefusedError when they cannot be used."""
        ...

    def new_oidc(self, form: OidcForm) -> NewConnection:
        """Settings checked against the issuer's discovery document (a network call: no
        transaction open); SetupRefusedError when they cannot be used."""
        ...

    def fetch_metadata(self, xml: bytes | None, url: str | None) -> bytes:
        """The IdP's metadata as given, or fetched from its URL (no transaction open);
        SetupRefusedError when there is none or it cannot be fetched."""
        ...

    def reimported_saml(
        self, connection: IdpConnection, xml: bytes, org_slug: str
    ) -> SettingsChange:
        """A SAML connection's settings with the IdP's endpoints and certificates from fresh
        metadata (parsing only, no network); SetupRefusedError when it cannot be used."""
        ...

    def oidc_client_secret(self, client_secret: str) -> SettingsChange:
        """An OIDC connection's secrets with a new client secret, encrypted."""
        ...

    def sp_values(self, connection: IdpConnection) -> dict[str, str]:
        """The values an IT admin pastes into the IdP (entity id, ACS, metadata URL, redirect
        URI, login URL), by name."""
        ...

    def facts(self, connection: IdpConnection) -> list[SetupFact]:
        """What the connection is set to, for its page; never a secret."""
        ...

    def test_sign_in_url(self, connection: IdpConnection, requested_by: str) -> str:
        """Where to send the admin's browser for a test sign-in: the SSO flow runs, nothing
        is provisioned, and a page shows what the IdP sent."""
        ...


def connection_setup() -> ConnectionSetup:
    """The SSO adapter's implementation, as create_app() registered it."""
    setup: ConnectionSetup = current_app.extensions[EXTENSION]
    return setup
