"""The service's own login session: a random id in an HttpOnly cookie, its hash in the database."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.actions import Action
from app.audit import Actor
from app.db import utcnow
from app.models import IdpConnection, SsoSession, User

COOKIE = "blue_sso"
LIFETIME = timedelta(hours=8)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(session: Session, user: User, connection: IdpConnection) -> str:
    """Open a session for the user; returns the id for the cookie (never stored in clear)."""
    session_id = secrets.token_urlsafe(32)
    session.add(
        SsoSession(
            id_hash=_hash(session_id),
            org_id=user.org_id,
            user_id=user.id,
            connection_id=connection.id,
            expires_at=utcnow() + LIFETIME,
        )
    )
    return session_id


def current(session: Session, session_id: str | None) -> SsoSession | None:
    """The live session for a cookie value; a deprovisioned user's session is over."""
    if not session_id:
        return None
    row = session.get(SsoSession, _hash(session_id))
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.deprovisioned_at is not None:
        row.ended_at = utcnow()
        return None
    return row


def end(session: Session, session_id: str | None, actor: Actor) -> None:
    """End the session the cookie names, if any, and record the sign-out."""
    row = session.get(SsoSession, _hash(session_id)) if session_id else None
    if row is None or row.ended_at is not None:
        return
    row.ended_at = utcnow()
    audit.append(
        session,
        row.org_id,
        actor,
        Action.SESSION_ENDED,
        "user",
        row.user_id,
        None,
        {"reason": "logout"},
    )


def end_for_user(session: Session, user_id: UUID, actor: Actor) -> None:
    """End every session of a user (SAML single logout) and record it."""
    rows = session.scalars(
        select(SsoSession).where(SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
    ).all()
    for row in rows:
        row.ended_at = utcnow()
    if rows:
        audit.append(
            session,
            rows[0].org_id,
            actor,
            Action.SESSION_ENDED,
            "user",
            user_id,
            None,
            {"reason": "single_logout", "sessions": len(rows)},
        )


def user_sessions(session: Session, user_id: UUID) -> list[SsoSession]:
    return list(session.scalars(select(SsoSession).where(SsoSession.user_id == user_id)))
