"""An OIDC connection's settings as an admin gives them and as IdpConnection.settings stores
them (no secrets), and the error every refusal raises."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self
from urllib.parse import urlsplit

DEFAULT_SCOPES = ("openid", "email", "profile")
DEFAULT_GROUPS_CLAIM = "groups"
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
ENTRA_HOST = "login.microsoftonline.com"
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$")


class OidcError(Exception):
    """A login (or a connection setting) refused: `reason` for the audit, `detail` for people."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class SubjectMode(StrEnum):
    """What identifies a person across logins: the issuer's `sub`, or Entra ID's tenant+object."""

    ISS_SUB = "iss_sub"
    TID_OID = "tid_oid"


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """An OIDC connection's settings as stored in IdpConnection.settings (no secrets)."""

    issuer: str
    client_id: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    allowed_domains: tuple[str, ...] = ()
    subject_mode: SubjectMode = SubjectMode.ISS_SUB
    allowed_tenants: tuple[str, ...] = ()
    # None: client_secret_basic unless the provider only offers client_secret_post.
    token_auth_method: str | None = None
    use_userinfo: bool = False

    @classmethod
    def build(
        cls,
        issuer: str,
        client_id: str,
        scopes: Sequence[str] = (),
        groups_claim: str | None = None,
        allowed_domains: Sequence[str] = (),
        subject_mode: str | None = None,
        allowed_tenants: Sequence[str] = (),
        token_auth_method: str | None = None,
        use_userinfo: bool = False,
    ) -> Self:
        """Validated settings from an admin's input; OidcError(reason="settings") otherwise."""
        issuer = issuer.strip()
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query:
            raise OidcError("settings", "the issuer must be an absolute https URL")
        if not client_id.strip():
            raise OidcError("settings", "a client id is required")
        words = [w for scope in scopes for w in scope.split()]
        scope_list = tuple(dict.fromkeys(["openid", *(words or DEFAULT_SCOPES)]))
        domains = tuple(dict.fromkeys(d.strip().lower().rstrip(".") for d in allowed_domains))
        for domain in domains:
            if not DOMAIN.match(domain):
                raise OidcError("settings", f"{domain!r} is not a domain name")
        tenants = tuple(dict.fromkeys(t.strip().lower() for t in allowed_tenants))
        for tenant in tenants:
            if not TENANT_ID.match(tenant):
                raise OidcError("settings", f"{tenant!r} is not a tenant id")
        if subject_mode is None:
            is_entra = parts.hostname == ENTRA_HOST
            mode = SubjectMode.TID_OID if is_entra else SubjectMode.ISS_SUB
        else:
            try:
                mode = SubjectMode(subject_mode.replace("+", "_").replace("-", "_"))
            except ValueError:
                raise OidcError("settings", "subject mode must be iss_sub or tid_oid") from None
        if token_auth_method is not None and token_auth_method not in TOKEN_AUTH_METHODS:
            raise OidcError("settings", f"token auth method must be one of {TOKEN_AUTH_METHODS}")
        return cls(
            issuer=issuer,
            client_id=client_id.strip(),
            scopes=scope_list,
            groups_claim=(groups_claim or DEFAULT_GROUPS_CLAIM).strip(),
            allowed_domains=domains,
            subject_mode=mode,
            allowed_tenants=tenants,
            token_auth_method=token_auth_method,
            use_userinfo=use_userinfo,
        )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Self:
        """Settings read back from the database; OidcError(reason="settings") if unusable."""
        try:
            return cls.build(
                issuer=str(document["issuer"]),
                client_id=str(document["client_id"]),
                scopes=string_list(document.get("scopes")),
                groups_claim=document.get("groups_claim"),
                allowed_domains=string_list(document.get("allowed_domains")),
                subject_mode=document.get("subject_mode"),
                allowed_tenants=string_list(document.get("allowed_tenants")),
                token_auth_method=document.get("token_auth_method"),
                use_userinfo=document.get("userinfo") is True,
            )
        except (KeyError, TypeError, AttributeError):
            raise OidcError(
                "settings", "this connection's OpenID settings are incomplete"
            ) from None

    def as_document(self) -> dict[str, Any]:
        """The JSON stored in IdpConnection.settings."""
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scopes": list(self.scopes),
            "groups_claim": self.groups_claim,
            "allowed_domains": list(self.allowed_domains),
            "subject_mode": self.subject_mode.value,
            "allowed_tenants": list(self.allowed_tenants),
            "token_auth_method": self.token_auth_method,
            "userinfo": self.use_userinfo,
        }


def string_list(value: object) -> list[str]:
    """A JSON value that should be a list of strings (or one string); TypeError otherwise."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return list(value)
