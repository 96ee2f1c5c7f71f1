"""The provider's discovery document (OIDC Discovery §3), read into the parts we rely on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sso.oidc.settings import OidcError, string_list

# Entra ID's multi-tenant discovery documents publish this placeholder in `issuer`.
TENANT_PLACEHOLDER = "{tenantid}"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the provider's discovery document we rely on (OIDC Discovery §3)."""

    issuer: str  # may contain {tenantid}: Entra ID's multi-tenant endpoints
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    # RFC 9207 §3: the provider promises an `iss` parameter in every authorization response.
    sends_iss_parameter: bool

    @property
    def is_multi_tenant(self) -> bool:
        return TENANT_PLACEHOLDER in self.issuer


def provider_metadata(issuer: str, document: Any) -> ProviderMetadata:
    """The discovery document fetched for `issuer`, checked; OidcError("discovery") otherwise."""
    if not isinstance(document, dict):
        raise OidcError("discovery", "The identity provider's configuration is not a JSON object.")
    published = document.get("issuer")
    if not isinstance(published, str):
        raise OidcError("discovery", "The identity provider's configuration names no issuer.")
    # OIDC Discovery §4.3: the document's issuer is exactly the one we asked. Entra ID's
    # multi-tenant documents (common, organizations) publish a {tenantid} template instead.
    if published != issuer and not _template_covers(published, issuer):
        raise OidcError(
            "discovery", f"The identity provider calls itself {published!r}, not {issuer!r}."
        )
    endpoints: dict[str, str] = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise OidcError("discovery", f"The identity provider's configuration lacks {name}.")
        endpoints[name] = value
    userinfo = document.get("userinfo_endpoint")
    return ProviderMetadata(
        issuer=published,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=userinfo if isinstance(userinfo, str) and userinfo else None,
        token_auth_methods=tuple(
            string_list(document.get("token_endpoint_auth_methods_supported"))
        ),
        sends_iss_parameter=document.get("authorization_response_iss_parameter_supported") is True,
    )


def _template_covers(template: str, issuer: str) -> bool:
    if template.count(TENANT_PLACEHOLDER) != 1:
        return False
    prefix, suffix = template.split(TENANT_PLACEHOLDER)
    middle = issuer[len(prefix) : len(issuer) - len(suffix)]
    return (
        issuer.startswith(prefix)
        and issuer.endswith(suffix)
        and len(issuer) > len(prefix) + len(suffix)
        and "/" not in middle
    )


def tenant_issuer(template: str, tenant_id: str) -> str:
    """The issuer of one Entra ID tenant, from the multi-tenant template."""
    return template.replace(TENANT_PLACEHOLDER, tenant_id)
