"""Validating what the provider sends: the authorization response's issuer (RFC 9207), the ID
token's claims (OIDC Core §3.1.3.7) and signing key, and the claims a login is made of."""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from joserfc.jwk import ECKey, Key

from app.provisioning import LoginClaims
from sso.oidc.discovery import ProviderMetadata, tenant_issuer
from sso.oidc.settings import OidcError, OidcSettings, SubjectMode

# Asymmetric algorithms only: never `none`, never HS* (a public key must not become an HMAC
# secret). Okta signs with RS256, Entra ID with RS256; ES256 and PS256 for other providers.
SIGNING_ALGORITHMS = frozenset({"RS256", "ES256", "PS256"})
KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
# Bounded tolerance for clocks that differ between us and the identity provider.
CLOCK_SKEW_SECONDS = 60
# Claims the ID token alone decides; UserInfo never overrides them (OIDC Core §5.3.2).
ID_TOKEN_ONLY = frozenset(
    {"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "tid", "oid", "auth_time"}
)


def check_response_issuer(
    metadata: ProviderMetadata, settings: OidcSettings, iss: str | None
) -> None:
    """RFC 9207 §2.4: a present `iss` must name our provider; a provider that promises `iss`
    must send it (this stops mix-up attacks across an organization's connections)."""
    if iss is None:
        if metadata.sends_iss_parameter:
            raise OidcError("iss_parameter", "The sign-in response does not name its issuer.")
        return
    if metadata.is_multi_tenant:
        allowed = {tenant_issuer(metadata.issuer, t) for t in settings.allowed_tenants}
        if iss in allowed:
            return
    elif hmac.compare_digest(iss.encode(), metadata.issuer.encode()):
        return
    raise OidcError("iss_parameter", "The sign-in response comes from another issuer.")


def check_id_token_claims(
    metadata: ProviderMetadata,
    settings: OidcSettings,
    claims: Mapping[str, Any],
    nonce: str,
    now: float,
) -> None:
    """OIDC Core §3.1.3.7: issuer, audience, authorized party, times and nonce."""
    iss = claims.get("iss")
    if not isinstance(iss, str) or iss != expected_issuer(metadata, settings, claims):
        raise OidcError("id_token_issuer", "The ID token comes from another issuer.")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise OidcError("id_token_audience", "The ID token's audience is malformed.")
    if settings.client_id not in audiences:
        raise OidcError("id_token_audience", "The ID token was issued to another application.")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise OidcError("id_token_azp", "The ID token has several audiences and no azp.")
    if azp is not None and azp != settings.client_id:
        raise OidcError("id_token_azp", "The ID token was authorized for another application.")
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", 0)
    if not (_is_time(exp) and _is_time(iat) and _is_time(nbf)):
        raise OidcError("id_token_invalid", "The ID token's times are missing or malformed.")
    if exp <= now - CLOCK_SKEW_SECONDS:
        raise OidcError("id_token_expired", "The ID token has expired.")
    if iat > now + CLOCK_SKEW_SECONDS or nbf > now + CLOCK_SKEW_SECONDS:
        raise OidcError("id_token_not_yet_valid", "The ID token is not valid yet.")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not hmac.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        raise OidcError("id_token_nonce", "The ID token belongs to another sign-in attempt.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise OidcError("id_token_invalid", "The ID token has no subject.")


def expected_issuer(
    metadata: ProviderMetadata, settings: OidcSettings, claims: Mapping[str, Any]
) -> str | None:
    """The exact `iss` this provider's tokens must carry; for Entra ID multi-tenant, only the
    issuer of an allow-listed tenant (the `{tenantid}` template alone would admit every tenant)."""
    tid = claims.get("tid")
    if settings.allowed_tenants and (
        not isinstance(tid, str) or tid.lower() not in settings.allowed_tenants
    ):
        raise OidcError("tenant_not_allowed", "Your organization's tenant may not sign in here.")
    if not metadata.is_multi_tenant:
        return metadata.issuer
    if not settings.allowed_tenants or not isinstance(tid, str):
        raise OidcError("tenant_not_allowed", "Your organization's tenant may not sign in here.")
    return tenant_issuer(metadata.issuer, tid)


def token_auth_method(metadata: ProviderMetadata, settings: OidcSettings) -> str:
    """client_secret_basic (the OIDC default) unless configured or only _post is offered."""
    if settings.token_auth_method is not None:
        return settings.token_auth_method
    offered = metadata.token_auth_methods or ("client_secret_basic",)
    if "client_secret_basic" not in offered and "client_secret_post" in offered:
        return "client_secret_post"
    return "client_secret_basic"


def login_claims(settings: OidcSettings, claims: Mapping[str, Any]) -> LoginClaims:
    """What the verified claims say about the person, as the provisioning service reads it."""
    if settings.subject_mode is SubjectMode.TID_OID:
        # Entra ID: `sub` is pairwise per application; tenant + object id is the stable identity.
        tid, oid = claims.get("tid"), claims.get("oid")
        if not isinstance(tid, str) or not isinstance(oid, str) or not tid or not oid:
            raise OidcError("id_token_invalid", "The ID token lacks the tenant and object ids.")
        subject = f"{tid.lower()}|{oid.lower()}"
    else:
        subject = f"{claims['iss']}|{claims['sub']}"
    email = _text(claims, "email")
    if settings.allowed_domains:
        domain = email.rsplit("@", 1)[1].lower() if email and "@" in email else None
        if domain not in settings.allowed_domains:
            raise OidcError(
                "email_domain", "Your email address's domain may not sign in to this organization."
            )
    # Some providers send the boolean as a string; anything else is "not verified". Entra ID
    # sends no email_verified; its optional claim xms_edov says the email's domain is verified
    # by the tenant (Microsoft's answer to "nOAuth" email spoofing).
    email_verified = _is_true(claims.get("email_verified")) or _is_true(claims.get("xms_edov"))
    groups, overage = _groups(claims, settings.groups_claim)
    return LoginClaims(
        subject=subject,
        email=email,
        email_verified=email_verified,
        given_name=_text(claims, "given_name"),
        family_name=_text(claims, "family_name"),
        display_name=_text(claims, "name"),
        groups=groups,
        groups_overage=overage,
    )


def _groups(claims: Mapping[str, Any], name: str) -> tuple[list[str] | None, bool]:
    """The group claim, and whether Entra ID replaced it by an overage indicator.

    Entra ID puts at most 200 groups in a JWT; beyond that it sends `_claim_names` /
    `_claim_sources` (or `hasgroups` in implicit flows, `groups:src1` in some tokens) instead."""
    names = claims.get("_claim_names")
    overage = (
        (isinstance(names, dict) and name in names)
        or _is_true(claims.get("hasgroups"))
        or f"{name}:src1" in claims
    )
    if overage:
        return None, True
    value = claims.get(name)
    if value is None:
        return None, False
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OidcError("id_token_invalid", f"The {name!r} claim is not a list of group names.")
    return list(value), False


def pick_key(keys: list[Key], kid: str | None, alg: str) -> Key | None:
    """The one key that may verify this token: same kid, the algorithm's key type, for signing."""
    wanted = KEY_TYPES[alg]
    candidates = [
        key
        for key in keys
        if (kid is None or key.kid == kid)
        and key.key_type == wanted
        and key.get("use") in (None, "sig")
        and key.get("alg") in (None, alg)
        and (not isinstance(key, ECKey) or key.curve_name == "P-256")
    ]
    return candidates[0] if len(candidates) == 1 else None


def _is_true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _is_time(value: object) -> TypeGuard[int | float]:
    # Python's json accepts NaN, and every comparison with NaN is false: it would never expire.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value.strip() or None if isinstance(value, str) else None
