"""The service's own login session: a random id in an HttpOnly cookie, its hash in the database.
Opening and ending one goes through the provisioning package; looking one up writes nothing."""

from __future__ import annotations

import secrets
from datetime import timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import IdpConnection, SsoSession, User
from app.provisioning import Actor, sessions

COOKIE = sessions.SSO_COOKIE
LIFETIME = timedelta(hours=8)


_hash = sessions.hash_session_id


def start(session: Session, user: User, connection: IdpConnection) -> str:
    """Open a session for the user; returns the id for the cookie (never stored in clear)."""
    session_id = secrets.token_urlsafe(32)
    sessions.open_session(session, user, connection, _hash(session_id), utcnow() + LIFETIME)
    return session_id


def current(session: Session, session_id: str | None) -> SsoSession | None:
    """The live session for a cookie value (app.provisioning.sessions.live_session)."""
    found = sessions.live_session(session, session_id)
    return found[0] if found is not None else None


def end(session: Session, session_id: str | None, actor: Actor) -> None:
    """End the session the cookie names, if any, and record the sign-out."""
    row = session.get(SsoSession, _hash(session_id)) if session_id else None
    if row is not None:
        sessions.end_session(session, row, actor)


def end_for_user(session: Session, user_id: UUID, actor: Actor) -> None:
    """End every session of a user (SAML single logout) and record it."""
    sessions.end_user_sessions(session, user_id, actor)


def user_sessions(session: Session, user_id: UUID) -> list[SsoSession]:
    """Every session of the user, live or ended."""
    return list(session.scalars(select(SsoSession).where(SsoSession.user_id == user_id)))
