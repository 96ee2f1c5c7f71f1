"""Verify a hand-off token from Blue's identity provisioning service: an example for Blue.

After a single sign-on the service POSTs a form to the organization's Blue URL with `token` (and
`return_to`). `token` is a JWT signed with ES256 that lives 60 seconds. Blue accepts it only if:

- the header's `alg` is ES256 (nothing else, never `none`) and its `kid` is in the JWKS at
  {service}/.well-known/jwks.json (cached by kid; an unknown kid refreshes the set once);
- the signature verifies;
- `iss` is the service's base URL and `aud` is this Blue organization's URL, exactly;
- `exp`, `nbf` and `iat` hold with at most 30 seconds of clock skew, and the token does not claim
  a lifetime longer than 60 seconds;
- `jti` has not been seen before (keep it until the token expires). This example keeps jtis in
  memory; with more than one Blue process use a shared store (Redis `SET jti 1 NX EX ttl`, or a
  database table with a unique key).

Usage (requires joserfc):

    verifier = HandoffVerifier(
        jwks_url="https://provisioning.example.com/.well-known/jwks.json",
        issuer="https://provisioning.example.com",
        audience="https://acme.blue.example",
    )
    try:
        claims = verifier.verify(request.form["token"])
    except HandoffError:
        abort(401)
    # claims["sub"], claims["org"], claims["email"], claims["name"], claims["roles"], claims["seat"]

Run `python verify_handoff.py JWKS_URL ISSUER AUDIENCE TOKEN` to check one token by hand.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey, KeySet

ALGORITHM = "ES256"
MAX_SKEW_SECONDS = 30
MAX_LIFETIME_SECONDS = 60
JWKS_TTL_SECONDS = 300.0
# An unknown kid refreshes the JWKS, but forged tokens with random kids must not make every
# request fetch it: at most one such refresh per interval.
JWKS_REFRESH_INTERVAL_SECONDS = 30.0
REQUIRED_CLAIMS = ("iss", "aud", "sub", "org", "exp", "nbf", "iat", "jti")


class HandoffError(Exception):
    """The token must not sign anyone in; the message says why (for logs, not for users)."""


class JtiStore(Protocol):
    def add(self, jti: str, expires_at: float) -> bool:
        """Remember `jti` until `expires_at`; False if it was already there (a replay)."""
        ...


@dataclass
class MemoryJtiStore:
    """jtis of one process, forgotten once their token has expired. Production: shared store."""

    clock: Callable[[], float] = time.time
    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, jti: str, expires_at: float) -> bool:
        now = self.clock()
        with self._lock:
            for old in [j for j, until in self._seen.items() if until < now]:
                del self._seen[old]
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


def fetch_json(url: str) -> Any:
    """GET a JSON document (the JWKS); https outside local development."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read(1_048_576))


@dataclass
class HandoffVerifier:
    """Verifies hand-off tokens for one Blue organization (one audience)."""

    jwks_url: str
    issuer: str
    audience: str
    fetch: Callable[[str], Any] = fetch_json
    jti_store: JtiStore = field(default_factory=MemoryJtiStore)
    clock: Callable[[], float] = time.time
    _keys: dict[str, ECKey] = field(default_factory=dict)
    _fetched_at: float | None = None
    _forced_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if it may sign someone in; HandoffError otherwise."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, TypeError):
            raise HandoffError("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise HandoffError(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise HandoffError("the token names no key")
        key = self._key(kid)
        try:
            claims = dict(jwt.decode(token, key, algorithms=[ALGORITHM]).claims)
        except BadSignatureError:
            raise HandoffError("bad signature") from None
        except (JoseError, ValueError, TypeError):
            raise HandoffError("unreadable token") from None
        self._check_claims(claims)
        if not self.jti_store.add(claims["jti"], float(claims["exp"]) + MAX_SKEW_SECONDS):
            raise HandoffError("token already used")
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        missing = [name for name in REQUIRED_CLAIMS if claims.get(name) in (None, "")]
        if missing:
            raise HandoffError(f"missing claims: {', '.join(missing)}")
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=MAX_SKEW_SECONDS,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(dict(claims))
        except JoseError as error:
            raise HandoffError(f"claims refused: {error}") from None
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise HandoffError("the token claims too long a lifetime")

    def _key(self, kid: str) -> ECKey:
        now = self.clock()
        with self._lock:
            stale = self._fetched_at is None or now - self._fetched_at > JWKS_TTL_SECONDS
            key = None if stale else self._keys.get(kid)
            may_force = self._forced_at is None or now - self._forced_at > (
                JWKS_REFRESH_INTERVAL_SECONDS
            )
        if key is not None:
            return key
        if not stale and not may_force:
            raise HandoffError(f"unknown key {kid!r}")
        keys = self._refresh(forced=not stale)
        if kid not in keys:
            raise HandoffError(f"unknown key {kid!r}")
        return keys[kid]

    def _refresh(self, forced: bool) -> dict[str, ECKey]:
        document = self.fetch(self.jwks_url)
        keys: dict[str, ECKey] = {}
        for key in KeySet.import_key_set(document).keys:
            if (
                isinstance(key, ECKey)
                and key.curve_name == "P-256"
                and key.kid is not None
                and key.get("alg") in (None, ALGORITHM)
                and key.get("use") in (None, "sig")
            ):
                keys[key.kid] = key
        now = self.clock()
        with self._lock:
            self._keys = keys
            self._fetched_at = now
            if forced:
                self._forced_at = now
        return keys


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: verify_handoff.py JWKS_URL ISSUER AUDIENCE TOKEN")
    jwks_url, issuer, audience, token = sys.argv[1:]
    try:
        verified = HandoffVerifier(jwks_url, issuer, audience).verify(token)
    except HandoffError as error:
        sys.exit(f"refused: {error}")
    print(json.dumps(verified, indent=2))
