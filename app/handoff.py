"""The signed hand-off to Blue: short-lived single-use JWTs and the JWKS that verifies them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import audit, crypto
from app.actions import Action
from app.audit import Actor
from app.db import utcnow
from app.models import SigningKey

ALGORITHM = "ES256"
TOKEN_TTL = timedelta(seconds=60)
# A retired key stays published long enough for every token it signed to expire.
RETIRED_KEY_GRACE = TOKEN_TTL + timedelta(minutes=5)


def _new_key(
    session: Session, secret_key: str, actor: Actor = audit.SYSTEM_ACTOR
) -> tuple[SigningKey, ECKey]:
    key = ECKey.generate_key("P-256", private=True)
    kid = uuid.uuid4().hex
    public = dict(key.as_dict(private=False))
    public.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    row = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        encrypted_private_key=crypto.encrypt(secret_key, key.as_pem(private=True).decode()),
        public_jwk=public,
    )
    session.add(row)
    session.flush()
    # Keys belong to the service, not to one organization: they go in the global chain.
    audit.append(session, None, actor, Action.HANDOFF_KEY_CREATED, "signing_key", kid, None, public)
    return row, key


def current_key(session: Session, secret_key: str) -> tuple[SigningKey, ECKey]:
    """The active signing key, created on first use."""
    row = session.scalar(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    if row is None:
        return _new_key(session, secret_key)
    pem = crypto.decrypt(secret_key, row.encrypted_private_key)
    return row, ECKey.import_key(pem)


def rotate(session: Session, secret_key: str, actor: Actor = audit.SYSTEM_ACTOR) -> SigningKey:
    """Retire the active key and start a new one; the old one stays in the JWKS a while."""
    now = utcnow()
    for row in session.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        row.retired_at = now
        audit.append(session, None, actor, Action.HANDOFF_KEY_RETIRED, "signing_key", row.kid)
    row, _ = _new_key(session, secret_key, actor)
    return row


def jwks(session: Session) -> dict[str, Any]:
    """The public keys Blue verifies hand-off tokens with."""
    cutoff = utcnow() - RETIRED_KEY_GRACE
    rows = session.scalars(
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
        .order_by(SigningKey.created_at.desc())
    )
    return {"keys": [row.public_jwk for row in rows]}


def mint(
    session: Session,
    secret_key: str,
    issuer: str,
    audience: str,
    claims: Mapping[str, Any],
) -> str:
    """A signed token for Blue: valid for TOKEN_TTL, with a unique jti for single use."""
    row, key = current_key(session, secret_key)
    now = utcnow()
    payload = {
        **claims,
        "iss": issuer,
        "aud": audience,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + TOKEN_TTL).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": ALGORITHM, "kid": row.kid, "typ": "JWT"}, payload, key)
