"""The service's own SSO sessions: opened at login, ended at sign-out or single logout. (A
deprovisioned user's sessions end with the change that deprovisions them: directory/users.)"""

from __future__ import annotations

import hashlib
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.actions import Action, Target
from app.audit import Actor
from app.db import utcnow
from app.models import IdpConnection, SsoSession, User
from app.provisioning import events
from app.provisioning.scope import Scope

# The cookie that carries an SSO session's id (its hash is the row's key).
SSO_COOKIE = "blue_sso"


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def live_session(session: Session, session_id: str | None) -> tuple[SsoSession, User] | None:
    """The live session for a cookie value and its user; a deprovisioned user's session is
    over (the change that deprovisioned them ended it). Reads only."""
    if not session_id:
        return None
    row = session.get(SsoSession, hash_session_id(session_id))
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.deprovisioned_at is not None:
        return None
    return row, user


def open_session(
    session: Session, user: User, connection: IdpConnection, id_hash: str, expires_at: datetime
) -> None:
    """Open a session for the user, known by the hash of its cookie's value."""
    session.add(
        SsoSession(
            id_hash=id_hash,
            org_id=user.org_id,
            user_id=user.id,
            connection_id=connection.id,
            expires_at=expires_at,
        )
    )


def end_session(session: Session, row: SsoSession, actor: Actor) -> None:
    """End one session at the user's sign-out, and record it."""
    if row.ended_at is not None:
        return
    row.ended_at = utcnow()
    events.record(
        Scope(session, row.org_id, actor),
        Action.SESSION_ENDED,
        Target.USER,
        row.user_id,
        None,
        {"reason": "logout"},
    )


def end_user_sessions(session: Session, user_id: UUID, actor: Actor) -> None:
    """End every live session of a user (SAML single logout), and record it."""
    rows = session.scalars(
        select(SsoSession).where(SsoSession.user_id == user_id, SsoSession.ended_at.is_(None))
    ).all()
    for row in rows:
        row.ended_at = utcnow()
    if rows:
        events.record(
            Scope(session, rows[0].org_id, actor),
            Action.SESSION_ENDED,
            Target.USER,
            user_id,
            None,
            {"reason": "single_logout", "sessions": len(rows)},
        )
