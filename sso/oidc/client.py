"""Talking to the identity provider: discovery and JWKS (cached), the token endpoint, UserInfo,
and the ID token verified against the provider's keys."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import Key, KeySet

from sso.oidc.discovery import ProviderMetadata, provider_metadata
from sso.oidc.settings import OidcError, OidcSettings
from sso.oidc.tokens import SIGNING_ALGORITHMS, check_id_token_claims, pick_key, token_auth_method
from sso.oidc.transport import HTTP_TIMEOUT_SECONDS, Transport

DISCOVERY_TTL_SECONDS = 3600.0
JWKS_TTL_SECONDS = 3600.0
# An unknown kid forces a JWKS refresh, but not more often than this (the first refresh after a
# rotation always happens; a stream of unknown kids cannot turn into a stream of fetches).
JWKS_FORCED_REFRESH_INTERVAL_SECONDS = 60.0


@dataclass
class _CachedMetadata:
    metadata: ProviderMetadata
    fetched_at: float


@dataclass
class _CachedKeys:
    keys: list[Key]
    fetched_at: float
    forced_at: float | None = None


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

    @property
    def transport(self) -> Transport:
        """How this client reaches providers."""
        return Transport(self.allow_http_loopback, self.timeout)

    def discover(self, issuer: str, refresh: bool = False) -> ProviderMetadata:
        """The provider's metadata from {issuer}/.well-known/openid-configuration, cached."""
        now = self.clock()
        with self._lock:
            cached = self._documents.get(issuer)
        if cached is None or refresh or now - cached.fetched_at > DISCOVERY_TTL_SECONDS:
            url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            status, document = self.transport.request("discovery", url)
            if status != 200:
                raise OidcError(
                    "discovery", f"The identity provider's configuration is unavailable ({status})."
                )
            metadata = provider_metadata(issuer, document)
            for url in (metadata.authorization_endpoint, metadata.token_endpoint):
                self.transport.check_url("discovery", url)
            cached = _CachedMetadata(metadata, now)
            with self._lock:
                self._documents[issuer] = cached
        return cached.metadata

    def redeem_code(
        self,
        metadata: ProviderMetadata,
        settings: OidcSettings,
        client_secret: str,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> tuple[str, str | None]:
        """The ID token and access token for an authorization code (RFC 6749 §4.1.3)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers: dict[str, str] = {}
        method = token_auth_method(metadata, settings)
        if method == "client_secret_basic":
            # RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            pair = f"{quote_plus(settings.client_id)}:{quote_plus(client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": settings.client_id, "client_secret": client_secret}
        status, document = self.transport.request(
            "token_exchange", metadata.token_endpoint, form, headers
        )
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
        key = pick_key(self._jwks(metadata.jwks_uri, force=False), kid, alg)
        if key is None:
            key = pick_key(self._jwks(metadata.jwks_uri, force=True), kid, alg)
        if key is None:
            raise OidcError(
                "id_token_unknown_key",
                "The ID token is signed with a key the identity provider does not publish.",
            )
        return key

    def userinfo(self, endpoint: str, access_token: str) -> dict[str, Any]:
        """The UserInfo claims (OIDC Core §5.3), JSON only."""
        status, document = self.transport.request(
            "userinfo", endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if status != 200 or not isinstance(document, dict):
            raise OidcError("userinfo", f"The identity provider's UserInfo failed (HTTP {status}).")
        return document

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
        status, document = self.transport.request("jwks", uri)
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
