"""The example verifier Blue is given (docs/examples/verify_handoff.py), run against real
hand-off tokens: one from a whole OIDC login, others minted by app.handoff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import handoff
from app.config import Settings
from app.models import Organization
from tests.sso.flow import (
    handoff_token,
    service_for,
    setup_org,
)
from tests.sso.oidc_flow import (
    BLUE_URL,
    add_connection,
    login,
)
from tests.sso.oidc_provider import OidcProvider, running_provider

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "verify_handoff.py"
CLAIMS = {
    "sub": "5b7c3f0e-2d1a-4c8e-9f00-0123456789ab",
    "org": "acme",
    "email": "ada@acme.example",
    "name": "Ada Lovelace",
    "roles": {"*": "team_member"},
    "seat": "paid",
}


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_handoff_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def acme(session: Session) -> Organization:
    organization = setup_org(session)
    service_for(session, organization).set_sso_options(blue_url=BLUE_URL)
    session.commit()
    return organization


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as provider:
        yield provider


class JwksFetches:
    """The service's JWKS, read through the test client, counting fetches."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.count = 0

    def __call__(self, url: str) -> Any:
        assert url == "http://localhost/.well-known/jwks.json"
        self.count += 1
        return self.client.get(url).json


def verifier(example: ModuleType, fetch: JwksFetches, **options: Any) -> Any:
    return example.HandoffVerifier(
        jwks_url="http://localhost/.well-known/jwks.json",
        issuer="http://localhost",
        audience=BLUE_URL,
        fetch=fetch,
        **options,
    )


def mint(app: Flask, session: Session, audience: str = BLUE_URL, issuer: str = "") -> str:
    settings: Settings = app.extensions["settings"]
    token = handoff.mint(
        session, settings.secret_key, issuer or settings.base_url, audience, CLAIMS
    )
    session.commit()
    return token


def test_a_token_from_a_real_login_verifies_once(
    example: ModuleType,
    app: Flask,
    client: FlaskClient,
    session: Session,
    acme: Organization,
    provider: OidcProvider,
) -> None:
    response = login(client, add_connection(app, session, acme, provider))
    assert response.status_code == 200
    check = verifier(example, JwksFetches(client))
    claims = check.verify(handoff_token(response))
    assert claims["org"] == "acme"
    assert claims["email"] == "ada@acme.example"
    assert claims["name"] == "Ada Lovelace"
    assert claims["roles"] == {"*": "team_member"}
    assert claims["seat"] == "paid"
    assert claims["aud"] == BLUE_URL and claims["iss"] == "http://localhost"
    assert claims["exp"] - claims["iat"] <= 60
    with pytest.raises(example.HandoffError, match="already used"):
        check.verify(handoff_token(response))


def test_an_expired_token_is_refused_after_the_skew(
    example: ModuleType, app: Flask, client: FlaskClient, session: Session, acme: Organization
) -> None:
    token = mint(app, session)
    fetch = JwksFetches(client)
    late = verifier(example, fetch, clock=lambda: time.time() + 60 + 31)
    with pytest.raises(example.HandoffError, match="claims refused"):
        late.verify(token)
    # Within 30 seconds of skew it still passes.
    assert verifier(example, fetch, clock=lambda: time.time() + 60 + 20).verify(token)


def test_a_token_not_yet_valid_is_refused(
    example: ModuleType, app: Flask, client: FlaskClient, session: Session, acme: Organization
) -> None:
    token = mint(app, session)
    early = verifier(example, JwksFetches(client), clock=lambda: time.time() - 45)
    with pytest.raises(example.HandoffError, match="claims refused"):
        early.verify(token)


@pytest.mark.parametrize(
    ("audience", "issuer"),
    [("https://globex.blue.example", ""), (BLUE_URL, "https://impostor.example")],
)
def test_another_audience_or_issuer_is_refused(
    example: ModuleType,
    app: Flask,
    client: FlaskClient,
    session: Session,
    acme: Organization,
    audience: str,
    issuer: str,
) -> None:
    token = mint(app, session, audience=audience, issuer=issuer)
    with pytest.raises(example.HandoffError, match="claims refused"):
        verifier(example, JwksFetches(client)).verify(token)


def test_only_es256_is_accepted(
    example: ModuleType, app: Flask, client: FlaskClient, session: Session, acme: Organization
) -> None:
    genuine = mint(app, session)
    header = json.loads(base64.urlsafe_b64decode(genuine.split(".")[0] + "=="))
    payload = genuine.split(".")[1]
    check = verifier(example, JwksFetches(client))
    for alg in ("none", "HS256"):
        forged_header = base64.urlsafe_b64encode(
            json.dumps({**header, "alg": alg}).encode()
        ).rstrip(b"=")
        signing_input = forged_header.decode() + "." + payload
        # HS256 keyed with the published public key: the key-confusion forgery.
        jwk = client.get("/.well-known/jwks.json").json
        assert jwk is not None
        secret = json.dumps(jwk["keys"][0]).encode()
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode() if alg != "none" else ""
        with pytest.raises(example.HandoffError, match="algorithm"):
            check.verify(f"{signing_input}.{signature}")


def test_a_tampered_token_is_refused(
    example: ModuleType, app: Flask, client: FlaskClient, session: Session, acme: Organization
) -> None:
    header, _, signature = mint(app, session).split(".")
    other = mint(app, session).split(".")[1]
    with pytest.raises(example.HandoffError, match="bad signature"):
        verifier(example, JwksFetches(client)).verify(f"{header}.{other}.{signature}")


def test_a_rotated_key_is_fetched_once_and_unknown_keys_are_refused(
    example: ModuleType, app: Flask, client: FlaskClient, session: Session, acme: Organization
) -> None:
    fetch = JwksFetches(client)
    check = verifier(example, fetch)
    assert check.verify(mint(app, session))
    settings: Settings = app.extensions["settings"]
    handoff.rotate(session, settings.secret_key)
    session.commit()
    assert check.verify(mint(app, session))  # the new kid: one refresh
    assert fetch.count == 2
    stranger = ECKey.generate_key("P-256")
    forged = jwt.encode(
        {"alg": "ES256", "kid": "not-published"},
        {**CLAIMS, "iss": "http://localhost", "aud": BLUE_URL, "jti": "x"},
        stranger,
    )
    fresh_fetch = JwksFetches(client)
    fresh = verifier(example, fresh_fetch)
    for _ in range(3):
        with pytest.raises(example.HandoffError, match="unknown key"):
            fresh.verify(forged)
    # The first fetch, then one refresh for the unknown kid: not one fetch per forged token.
    assert fresh_fetch.count == 2


def test_key_rotation_is_audited_in_the_global_chain(app: Flask, session: Session) -> None:
    from app import audit
    from app.models import AuditEvent

    settings = app.extensions["settings"]
    first = handoff.rotate(session, settings.secret_key)
    second = handoff.rotate(session, settings.secret_key)
    session.commit()
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.org_id.is_(None)).order_by(AuditEvent.seq)
    ).all()
    assert actions == ["handoff.key_created", "handoff.key_retired", "handoff.key_created"]
    assert first.kid != second.kid
    assert audit.verify(session, None).is_ok
