"""A real OpenID provider for the tests, served over HTTP on 127.0.0.1 from a background thread.

Discovery, an authorization endpoint that signs the configured person in at once and redirects
back with a code (it insists on PKCE S256), a token endpoint that checks client authentication,
the code's redirect URI and the PKCE verifier, a JWKS and UserInfo. ID tokens are signed with
joserfc. Tests steer it through plain attributes: the person, claim changes for the next ID
tokens, how to sign them, what to add to the redirect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode

from flask import Flask, Response, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from werkzeug.serving import BaseWSGIServer, make_server

CLIENT_ID = "blue-provisioning-app"
CLIENT_SECRET = "provider-client-secret-0123456789"
REMOVE = object()  # a claim change that deletes the claim


@dataclass
class ProviderKey:
    kid: str
    alg: str
    key: RSAKey | ECKey
    published: bool = True

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return jwk


def new_key(alg: str) -> ProviderKey:
    key: RSAKey | ECKey
    key = ECKey.generate_key("P-256") if alg == "ES256" else RSAKey.generate_key(2048)
    return ProviderKey(secrets.token_hex(8), alg, key)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64(hashlib.sha256(verifier.encode()).digest())


@dataclass
class OidcProvider:
    """The provider's state; `root` is its base URL once started."""

    alg: str = "RS256"
    multi_tenant: bool = False
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    root: str = ""
    # Who signs in at the authorization endpoint.
    user: dict[str, Any] = field(
        default_factory=lambda: {
            "sub": "00u-ada",
            "email": "ada@acme.example",
            "email_verified": True,
            "name": "Ada Lovelace",
            "given_name": "Ada",
            "family_name": "Lovelace",
            "groups": ["Engineering"],
        }
    )
    # Claims merged into (or, with REMOVE, dropped from) the next ID tokens.
    id_token_changes: dict[str, Any] = field(default_factory=dict)
    userinfo_changes: dict[str, Any] = field(default_factory=dict)
    discovery_changes: dict[str, Any] = field(default_factory=dict)
    # "key" (the current key), "none" (alg none), "hs256_public" (HMAC keyed with the public key)
    # or "unpublished" (a key missing from the JWKS).
    signing: str = "key"
    # The RFC 9207 `iss` parameter added to the redirect: None for none, True for our issuer.
    iss_parameter: str | bool | None = None
    redirect_uris: set[str] = field(default_factory=set)
    keys: list[ProviderKey] = field(default_factory=list)
    jwks_requests: int = 0
    # Called as each request arrives (while the service waits for the answer).
    on_request: Callable[[str], object] | None = None
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys.append(new_key(self.alg))
        self._unpublished = new_key(self.alg)
        self._unpublished.published = False

    # ---------------------------------------------------------------- names

    @property
    def issuer(self) -> str:
        """What an admin configures: the discovery base (Entra ID: the `organizations` one)."""
        return f"{self.root}/organizations/v2.0" if self.multi_tenant else self.root

    @property
    def published_issuer(self) -> str:
        return f"{self.root}/{{tenantid}}/v2.0" if self.multi_tenant else self.root

    def token_issuer(self, claims: dict[str, Any]) -> str:
        return f"{self.root}/{claims['tid']}/v2.0" if self.multi_tenant else self.root

    @property
    def current_key(self) -> ProviderKey:
        return self.keys[-1]

    def rotate_key(self) -> ProviderKey:
        """Publish a new key and sign with it from now on (the old one stays published)."""
        key = new_key(self.alg)
        self.keys.append(key)
        return key

    # -------------------------------------------------------------- tokens

    def id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            **self.user,
            "iss": self.token_issuer(self.user),
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        for name, value in self.id_token_changes.items():
            if value is REMOVE:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self.sign(claims)

    def sign(self, claims: dict[str, Any]) -> str:
        key = self._unpublished if self.signing == "unpublished" else self.current_key
        if self.signing == "none":
            header = {"alg": "none", "typ": "JWT"}
            return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
        if self.signing == "hs256_public":
            # The classic key-confusion forgery: HMAC keyed with the provider's public key.
            header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
            signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
            secret = key.key.as_pem(private=False)
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{b64(mac)}"
        return jwt.encode(
            {"alg": key.alg, "kid": key.kid, "typ": "JWT"}, claims, key.key, algorithms=[key.alg]
        )

    # ----------------------------------------------------------------- app

    def wsgi(self) -> Flask:
        app = Flask("oidc_provider")
        discovery = (
            "/organizations/v2.0/.well-known/openid-configuration"
            if self.multi_tenant
            else "/.well-known/openid-configuration"
        )
        app.add_url_rule(discovery, "discovery", self._discovery)
        app.add_url_rule("/authorize", "authorize", self._authorize)
        app.add_url_rule("/token", "token", self._token, methods=["POST"])
        app.add_url_rule("/jwks", "jwks", self._jwks)
        app.add_url_rule("/userinfo", "userinfo", self._userinfo)

        @app.before_request
        def _observe() -> None:
            if self.on_request is not None:
                self.on_request(request.path)

        return app

    def _discovery(self) -> ResponseReturnValue:
        document = {
            "issuer": self.published_issuer,
            "authorization_endpoint": f"{self.root}/authorize",
            "token_endpoint": f"{self.root}/token",
            "jwks_uri": f"{self.root}/jwks",
            "userinfo_endpoint": f"{self.root}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(self.auth_methods),
            **self.discovery_changes,
        }
        return jsonify(document)

    def _authorize(self) -> ResponseReturnValue:
        params = request.args.to_dict()
        self.authorize_requests.append(params)
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            # RFC 6749 §4.1.2.1: never redirect to an unverified redirect URI.
            return Response("unknown client or redirect_uri", status=400)
        state = params.get("state")
        if params.get("response_type") != "code" or "openid" not in params.get("scope", ""):
            return self._redirect_error(redirect_uri, state, "unsupported_response_type")
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return self._redirect_error(
                redirect_uri, state, "invalid_request", "PKCE with S256 is required"
            )
        code = secrets.token_urlsafe(24)
        self._codes[code] = {
            "redirect_uri": redirect_uri,
            "challenge": params["code_challenge"],
            "nonce": params.get("nonce"),
        }
        return self._redirect(redirect_uri, {"code": code, "state": state})

    def _redirect_error(
        self, redirect_uri: str, state: str | None, error: str, description: str | None = None
    ) -> ResponseReturnValue:
        params = {"error": error, "state": state}
        if description:
            params["error_description"] = description
        return self._redirect(redirect_uri, params)

    def _redirect(self, redirect_uri: str, params: dict[str, str | None]) -> ResponseReturnValue:
        if self.iss_parameter is True:
            params["iss"] = self.token_issuer(self.user)
        elif isinstance(self.iss_parameter, str):
            params["iss"] = self.iss_parameter
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return redirect(f"{redirect_uri}?{query}")

    def _token(self) -> ResponseReturnValue:
        form = request.form.to_dict()
        method, client_id, secret = "none", form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
            raw_id, _, raw_secret = decoded.partition(":")
            method, client_id, secret = (
                "client_secret_basic",
                unquote_plus(raw_id),
                unquote_plus(raw_secret),
            )
        elif secret is not None:
            method = "client_secret_post"
        self.token_requests.append({**form, "auth_method": method})
        if (
            method not in self.auth_methods
            or client_id != self.client_id
            or secret is None
            or not hmac.compare_digest(secret, self.client_secret)
        ):
            return jsonify({"error": "invalid_client"}), 401
        if form.get("grant_type") != "authorization_code":
            return jsonify({"error": "unsupported_grant_type"}), 400
        grant = self._codes.pop(form.get("code", ""), None)  # a code is redeemed once
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            return jsonify({"error": "invalid_grant"}), 400
        verifier = form.get("code_verifier")
        if not verifier or not hmac.compare_digest(s256(verifier), grant["challenge"]):
            return jsonify({"error": "invalid_grant", "error_description": "PKCE failed"}), 400
        access_token = secrets.token_urlsafe(24)
        self._access_tokens[access_token] = dict(self.user)
        return jsonify(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.id_token(grant["nonce"]),
            }
        )

    def _jwks(self) -> ResponseReturnValue:
        self.jwks_requests += 1
        return jsonify({"keys": [k.public_jwk() for k in self.keys if k.published]})

    def _userinfo(self) -> ResponseReturnValue:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        user = self._access_tokens.get(token)
        if user is None:
            return jsonify({"error": "invalid_token"}), 401
        return jsonify({**user, **self.userinfo_changes})


@contextmanager
def running_provider(**options: Any) -> Iterator[OidcProvider]:
    """A provider listening on a free port of 127.0.0.1 until the block ends."""
    provider = OidcProvider(**options)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, provider.wsgi(), threaded=True)
    provider.root = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
