"""OpenID Connect relying party: discovery, JWKS, the token endpoint, ID token verification and
UserInfo. The one place Authlib's and joserfc's loosely typed values (and `Any`) appear: callers
get dataclasses and `LoginClaims`, or an `OidcError` that says why a login is refused."""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import math
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self, TypeGuard
from urllib.parse import quote_plus, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, Key, KeySet

from app.provisioning import LoginClaims

# Asymmetric algorithms only: never `none`, never HS* (a public key must not become an HMAC
# secret). Okta signs with RS256, Entra ID with RS256; ES256 and PS256 for other providers.
SIGNING_ALGORITHMS = frozenset({"RS256", "ES256", "PS256"})
KEY_TYPES = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
# Bounded tolerance for clocks that differ between us and the identity provider.
CLOCK_SKEW_SECONDS = 60
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_TTL_SECONDS = 3600.0
# An unknown kid forces a JWKS refresh, but not more often than this (the first refresh after a
# rotation always happens; a stream of unknown kids cannot turn into a stream of fetches).
JWKS_FORCED_REFRESH_INTERVAL_SECONDS = 60.0
HTTP_TIMEOUT_SECONDS = 10.0
MAX_RESPONSE_BYTES = 1_048_576
DEFAULT_SCOPES = ("openid", "email", "profile")
DEFAULT_GROUPS_CLAIM = "groups"
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# Entra ID's multi-tenant discovery documents publish this placeholder in `issuer`.
TENANT_PLACEHOLDER = "{tenantid}"
ENTRA_HOST = "login.microsoftonline.com"
LOOPBACK_HOSTS = ("localhost",)
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$")
# Claims the ID token alone decides; UserInfo never overrides them (OIDC Core §5.3.2).
ID_TOKEN_ONLY = frozenset(
    {"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "tid", "oid", "auth_time"}
)


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
                scopes=_strings(document.get("scopes")),
                groups_claim=document.get("groups_claim"),
                allowed_domains=_strings(document.get("allowed_domains")),
                subject_mode=document.get("subject_mode"),
                allowed_tenants=_strings(document.get("allowed_tenants")),
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


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """A new authorization request: what to remember (state, nonce, verifier) and where to go."""

    state: str
    nonce: str
    code_verifier: str
    url: str


@dataclass(frozen=True, slots=True)
class AuthorizationResponse:
    """The query parameters the provider sent the browser back with."""

    code: str | None = None
    iss: str | None = None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Self:
        return cls(
            code=params.get("code") or None,
            iss=params.get("iss"),
            error=params.get("error") or None,
            error_description=params.get("error_description") or None,
        )


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """What the login's start remembered, taken back (once) at the callback."""

    nonce: str
    code_verifier: str
    redirect_uri: str


@dataclass
class _CachedMetadata:
    metadata: ProviderMetadata
    fetched_at: float


@dataclass
class _CachedKeys:
    keys: list[Key]
    fetched_at: float
    forced_at: float | None = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """The provider's endpoints answer directly; a redirect is an error, never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class OidcClient:
    """Talks to identity providers for one application; caches discovery and JWKS per issuer.

    The caches are only an optimisation (every entry is re-fetchable public data), so they may
    live in each worker's memory. Nothing here touches the database: callers must not hold a
    transaction open while calling it (STYLE.md §5)."""

    allow_http_loopback: bool = False
    timeout: float = HTTP_TIMEOUT_SECONDS
    clock: Callable[[], float] = time.monotonic
    _documents: dict[str, _CachedMetadata] = field(default_factory=dict)
    _keys: dict[str, _CachedKeys] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------ discovery

    def discover(self, issuer: str, refresh: bool = False) -> ProviderMetadata:
        """The provider's metadata from {issuer}/.well-known/openid-configuration, cached."""
        now = self.clock()
        with self._lock:
            cached = self._documents.get(issuer)
        if cached is None or refresh or now - cached.fetched_at > DISCOVERY_TTL_SECONDS:
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            status, document = self._request("discovery", url)
            if status != 200:
                raise OidcError(
                    "discovery", f"The identity provider's configuration is unavailable ({status})."
                )
            metadata = _metadata(issuer, document)
            for url in (metadata.authorization_endpoint, metadata.token_endpoint):
                self._check_url("discovery", url)
            cached = _CachedMetadata(metadata, now)
            with self._lock:
                self._documents[issuer] = cached
        return cached.metadata

    # ------------------------------------------------- authorization request

    def start(
        self, settings: OidcSettings, redirect_uri: str, metadata: ProviderMetadata
    ) -> AuthorizationStart:
        """An authorization code request with PKCE S256 (RFC 7636), state and nonce."""
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 §4.1 wants 43-128
        challenge: str = create_s256_code_challenge(verifier)
        params = {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        endpoint = metadata.authorization_endpoint
        separator = "&" if urlsplit(endpoint).query else "?"
        return AuthorizationStart(state, nonce, verifier, endpoint + separator + urlencode(params))

    # ---------------------------------------------------------------- callback

    def finish(
        self,
        settings: OidcSettings,
        client_secret: str,
        response: AuthorizationResponse,
        pending: PendingLogin,
    ) -> LoginClaims:
        """Check the authorization response, redeem the code, verify the ID token (and UserInfo)
        and return the verified claims a login is made of."""
        metadata = self.discover(settings.issuer)
        check_response_issuer(metadata, settings, response.iss)
        if response.error is not None:
            shown = response.error
            if response.error_description:
                shown += f": {response.error_description[:300]}"
            raise OidcError("idp_error", f"The identity provider answered with an error ({shown}).")
        if not response.code:
            raise OidcError("code_missing", "The identity provider sent no authorization code.")
        id_token, access_token = self.redeem_code(
            metadata, settings, client_secret, response.code, pending
        )
        claims = self.verify_id_token(metadata, settings, id_token, pending.nonce)
        if settings.use_userinfo:
            if access_token is None or metadata.userinfo_endpoint is None:
                raise OidcError("userinfo", "The identity provider offers no UserInfo endpoint.")
            extra = self.userinfo(metadata.userinfo_endpoint, access_token)
            # OIDC Core §5.3.2: the UserInfo response is about the ID token's subject, or no one.
            sub = extra.get("sub")
            if not isinstance(sub, str) or not hmac.compare_digest(
                sub.encode(), str(claims["sub"]).encode()
            ):
                raise OidcError(
                    "userinfo_sub", "The identity provider's UserInfo is about someone else."
                )
            claims = {**claims, **{k: v for k, v in extra.items() if k not in ID_TOKEN_ONLY}}
        return login_claims(settings, claims)

    def redeem_code(
        self,
        metadata: ProviderMetadata,
        settings: OidcSettings,
        client_secret: str,
        code: str,
        pending: PendingLogin,
    ) -> tuple[str, str | None]:
        """The ID token and access token for an authorization code (RFC 6749 §4.1.3)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers: dict[str, str] = {}
        method = token_auth_method(metadata, settings)
        if method == "client_secret_basic":
            # RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            pair = f"{quote_plus(settings.client_id)}:{quote_plus(client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": settings.client_id, "client_secret": client_secret}
        status, document = self._request("token_exchange", metadata.token_endpoint, form, headers)
        if status != 200:
            error = document.get("error") if isinstance(document, dict) else None
            shown = error if isinstance(error, str) else f"HTTP {status}"
            raise OidcError(
                "token_exchange",
                f"The identity provider refused to redeem the code ({shown[:100]}).",
            )
        id_token = document.get("id_token") if isinstance(document, dict) else None
        if not isinstance(id_token, str):
            raise OidcError("token_exchange", "The identity provider returned no ID token.")
        access_token = document.get("access_token")
        return id_token, access_token if isinstance(access_token, str) else None

    def verify_id_token(
        self, metadata: ProviderMetadata, settings: OidcSettings, id_token: str, nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims after OIDC Core §3.1.3.7 validation, or OidcError."""
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise OidcError("id_token_invalid", "The ID token is malformed.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in SIGNING_ALGORITHMS:
            raise OidcError("id_token_alg", f"The ID token's algorithm {alg!r} is not accepted.")
        kid = header.get("kid")
        key = self.signing_key(metadata, kid if isinstance(kid, str) else None, alg)
        try:
            token = jwt.decode(id_token, key, algorithms=[alg])
        except BadSignatureError:
            raise OidcError(
                "id_token_signature", "The ID token's signature is not valid."
            ) from None
        except (JoseError, ValueError, TypeError):
            raise OidcError("id_token_invalid", "The ID token cannot be read.") from None
        claims: dict[str, Any] = dict(token.claims)
        check_id_token_claims(metadata, settings, claims, nonce, time.time())
        return claims

    def signing_key(self, metadata: ProviderMetadata, kid: str | None, alg: str) -> Key:
        """The provider's key for this kid and algorithm; refreshes the JWKS once if unknown."""
        key = _pick_key(self._jwks(metadata.jwks_uri, force=False), kid, alg)
        if key is None:
            key = _pick_key(self._jwks(metadata.jwks_uri, force=True), kid, alg)
        if key is None:
            raise OidcError(
                "id_token_unknown_key",
                "The ID token is signed with a key the identity provider does not publish.",
            )
        return key

    def userinfo(self, endpoint: str, access_token: str) -> dict[str, Any]:
        """The UserInfo claims (OIDC Core §5.3), JSON only."""
        status, document = self._request(
            "userinfo", endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if status != 200 or not isinstance(document, dict):
            raise OidcError("userinfo", f"The identity provider's UserInfo failed (HTTP {status}).")
        return document

    # -------------------------------------------------------------- plumbing

    def _jwks(self, uri: str, force: bool) -> list[Key]:
        now = self.clock()
        with self._lock:
            cached = self._keys.get(uri)
        if cached is not None:
            fresh = now - cached.fetched_at <= JWKS_TTL_SECONDS
            recently_forced = (
                cached.forced_at is not None
                and now - cached.forced_at < JWKS_FORCED_REFRESH_INTERVAL_SECONDS
            )
            if (fresh and not force) or (force and recently_forced):
                return cached.keys
        status, document = self._request("jwks", uri)
        if status != 200 or not isinstance(document, dict):
            raise OidcError(
                "jwks", f"The identity provider's keys are unavailable (HTTP {status})."
            )
        try:
            keys = KeySet.import_key_set({"keys": list(document.get("keys") or [])}).keys
        except (JoseError, ValueError, TypeError):
            raise OidcError("jwks", "The identity provider's keys cannot be read.") from None
        with self._lock:
            self._keys[uri] = _CachedKeys(keys, now, now if force else None)
        return keys

    def _check_url(self, reason: str, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and self.allow_http_loopback and _is_loopback(parts.hostname):
            return
        raise OidcError(reason, f"The identity provider's URL {url!r} is not an https URL.")

    def _request(
        self,
        reason: str,
        url: str,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """GET (or POST a form) and parse the JSON answer; (status, document)."""
        self._check_url(reason, url)
        request = urllib.request.Request(
            url,
            data=urlencode(form).encode() if form is not None else None,
            headers={
                "Accept": "application/json",
                "User-Agent": "blue-provisioning",
                **(headers or {}),
            },
            method="POST" if form is not None else "GET",
        )
        if form is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read(MAX_RESPONSE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError):
            raise OidcError(reason, "The identity provider cannot be reached.") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise OidcError(reason, "The identity provider's answer is too large.")
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            if status != 200:
                return status, None
            raise OidcError(reason, "The identity provider's answer is not JSON.") from None


# ------------------------------------------------------------------ pure checks


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
        allowed = {_tenant_issuer(metadata.issuer, t) for t in settings.allowed_tenants}
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
    return _tenant_issuer(metadata.issuer, tid)


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


def _metadata(issuer: str, document: Any) -> ProviderMetadata:
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
        token_auth_methods=tuple(_strings(document.get("token_endpoint_auth_methods_supported"))),
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


def _tenant_issuer(template: str, tenant_id: str) -> str:
    return template.replace(TENANT_PLACEHOLDER, tenant_id)


def _pick_key(keys: list[Key], kid: str | None, alg: str) -> Key | None:
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


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_time(value: object) -> TypeGuard[int | float]:
    # Python's json accepts NaN, and every comparison with NaN is false: it would never expire.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return list(value)
