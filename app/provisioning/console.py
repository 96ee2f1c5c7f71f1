"""Who may use the console: group grants, one-time bootstrap links, and console sessions opened
and ended. (Looking a session up on each request writes nothing: app/console/auth.py.)"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from uuid import UUID

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.actions import Action, Target
from app.audit import Actor
from app.db import utcnow
from app.errors import InvalidChangeError, LoginRefusedError
from app.models import ConsoleGrant, ConsoleLink, ConsoleSession, Group, Membership, User
from app.provisioning import events
from app.provisioning.scope import Scope

LINK_LIFETIME = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)  # absolute: sign in again after this, however busy
IDLE_TIMEOUT = timedelta(minutes=30)


class ConsoleRole(StrEnum):
    """Org admins change things; security reviewers read everything and change nothing."""

    ADMIN = "admin"
    REVIEWER = "reviewer"


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new console session: the cookie's value (never stored in clear) and its row."""

    cookie: str
    row: ConsoleSession


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def role_of(session: Session, org_id: UUID, user_id: UUID) -> ConsoleRole | None:
    """The console role the user's groups grant, the higher one when several do."""
    roles = set(
        session.scalars(
            select(ConsoleGrant.role)
            .join(Membership, Membership.group_id == ConsoleGrant.group_id)
            .where(ConsoleGrant.org_id == org_id, Membership.user_id == user_id)
        )
    )
    if ConsoleRole.ADMIN in roles:
        return ConsoleRole.ADMIN
    return ConsoleRole.REVIEWER if ConsoleRole.REVIEWER in roles else None


def grant_console_role(scope: Scope, group_id: UUID, role: ConsoleRole | None) -> None:
    """Members of the group may use the console in `role`; None takes the grant away."""
    group = scope.scoped(Group, group_id, "group")
    row = scope.session.scalar(
        select(ConsoleGrant).where(
            ConsoleGrant.org_id == scope.org_id, ConsoleGrant.group_id == group.id
        )
    )
    before = {"role": row.role} if row is not None else None
    if role is None and row is not None:
        scope.session.execute(delete(ConsoleGrant).where(ConsoleGrant.id == row.id))
    elif role is not None and row is None:
        scope.session.add(ConsoleGrant(org_id=scope.org_id, group_id=group.id, role=role))
    elif role is not None and row is not None:
        row.role = role
    after = {"role": str(role)} if role is not None else None
    if before != after:
        payload = {"display_name": group.display_name}
        events.record(
            scope,
            Action.CONSOLE_ACCESS_CHANGED,
            Target.GROUP,
            group.id,
            before and before | payload,
            after and after | payload,
        )


def create_link(scope: Scope, email: str) -> str:
    """A bootstrap link's secret for first setup: it signs `email` in as org admin once,
    within LINK_LIFETIME. Only its hash is stored."""
    email = email.strip()
    if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
        raise InvalidChangeError(f"{email!r} is not an email address")
    secret = secrets.token_urlsafe(32)
    expires_at = utcnow() + LINK_LIFETIME
    scope.session.add(
        ConsoleLink(
            id_hash=hash_secret(secret), org_id=scope.org_id, email=email, expires_at=expires_at
        )
    )
    events.record(
        scope,
        Action.CONSOLE_LINK_CREATED,
        Target.CONSOLE,
        None,
        None,
        {"email": email, "expires_at": expires_at.isoformat()},
    )
    return secret


def redeem_link(session: Session, secret: str, actor: Actor) -> OpenedSession:
    """Sign in with a bootstrap link: once, before it expires. LoginRefusedError otherwise."""
    link = session.scalar(
        select(ConsoleLink).where(ConsoleLink.id_hash == hash_secret(secret)).with_for_update()
    )
    if link is None:
        raise LoginRefusedError("This sign-in link is not valid.", "link_unknown")
    if link.used_at is not None:
        raise LoginRefusedError("This sign-in link has already been used.", "link_used")
    if link.expires_at <= utcnow():
        raise LoginRefusedError("This sign-in link has expired.", "link_expired")
    link.used_at = utcnow()
    user_id = session.scalar(
        select(User.id).where(
            User.org_id == link.org_id,
            User.primary_email == link.email,
            User.deprovisioned_at.is_(None),
        )
    )
    actor = Actor("console", link.email, actor.request_id, actor.source_ip, actor.user_agent)
    return _open(Scope(session, link.org_id, actor), user_id, link.email, ConsoleRole.ADMIN, "link")


def open_sso_session(scope: Scope, user: User) -> OpenedSession:
    """Sign a user who has just signed in through SSO in to the console, in the role their
    groups grant; LoginRefusedError when they have none."""
    role = role_of(scope.session, scope.org_id, user.id)
    if role is None or not user.is_active or user.deprovisioned_at is not None:
        raise LoginRefusedError(
            "Your account has no access to the console. Ask your IT admin to add you to a "
            "group that grants it.",
            "no_console_role",
        )
    email = user.primary_email or user.user_name
    return _open(scope, user.id, email, role, "sso")


def _open(
    scope: Scope, user_id: UUID | None, email: str, role: ConsoleRole, via: str
) -> OpenedSession:
    cookie = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id_hash=hash_secret(cookie),
        org_id=scope.org_id,
        user_id=user_id,
        email=email,
        role=role,
        via=via,
        expires_at=utcnow() + SESSION_LIFETIME,
    )
    scope.session.add(row)
    events.record(
        scope,
        Action.CONSOLE_SIGNED_IN,
        Target.CONSOLE,
        user_id,
        None,
        {"email": email, "role": str(role), "via": via},
    )
    return OpenedSession(cookie, row)


def end_session(scope: Scope, row: ConsoleSession, reason: str) -> None:
    """End one console session (sign-out, idle timeout) and record it."""
    if row.ended_at is not None:
        return
    row.ended_at = utcnow()
    events.record(
        scope,
        Action.CONSOLE_SIGNED_OUT,
        Target.CONSOLE,
        row.user_id,
        None,
        {"email": row.email, "reason": reason},
    )


def end_user_sessions(session: Session, user_id: UUID) -> None:
    """A deprovisioned user's console sessions end with the change that deprovisions them."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
