"""Who is signed in to the console, and what they may do.

The console session is a row (`ConsoleSession`, found by the hash of a random id); the signed
Flask session cookie carries that id and when the person was last seen, so the idle timeout
needs no write on each page. Sessions opened through SSO follow their user: a deactivated user,
or one whose groups no longer grant a console role, is signed out on their next request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from flask import abort, g, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from app.audit import Actor
from app.db import read_only_unit, unit_of_work, utcnow
from app.logs import current_request_id
from app.models import ConsoleSession, Organization, User
from app.provisioning import ProvisioningService
from app.provisioning.console import IDLE_TIMEOUT, ConsoleRole, OpenedSession, hash_secret, role_of

F = TypeVar("F", bound=Callable[..., Any])
SESSION_KEY = "console"
SEEN_KEY = "seen"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The person signed in to the console, for this request."""

    org_id: UUID
    org_slug: str
    org_name: str
    email: str
    role: ConsoleRole
    user_id: UUID | None
    via: str
    session_hash: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role is ConsoleRole.ADMIN


def current_user_or_none() -> ConsoleUser | None:
    found: ConsoleUser | None = g.get("console_user")
    return found


def console_user() -> ConsoleUser:
    """The signed-in person; views marked @reader or @admin always have one."""
    user = current_user_or_none()
    assert user is not None, "console views are marked @reader or @admin"
    return user


def console_actor() -> Actor:
    """The console user as the audit trail's actor, with the browser's request details."""
    user = console_user()
    return Actor(
        kind="console",
        label=user.email,
        request_id=current_request_id(),
        source_ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def begin(opened: OpenedSession) -> None:
    """Put a new console session in the cookie: a fresh cookie, so nothing from before
    sign-in (a planted CSRF token) carries over."""
    session.clear()
    session[SESSION_KEY] = opened.cookie
    session[SEEN_KEY] = utcnow().timestamp()


def forget() -> None:
    session.clear()


def load_console_user() -> ResponseReturnValue | None:
    """Find who is signed in from the cookie; end an idle session. Reads only, unless the
    session has just gone idle (then its end is recorded)."""
    cookie = session.get(SESSION_KEY)
    if not isinstance(cookie, str):
        return None
    seen = session.get(SEEN_KEY)
    now = utcnow()
    if not isinstance(seen, float | int) or now.timestamp() - seen > IDLE_TIMEOUT.total_seconds():
        end_idle_session(hash_secret(cookie))
        forget()
        return redirect(url_for("console.sign_in", reason="idle"))
    with read_only_unit() as db:
        user = _live_user(db, hash_secret(cookie))
    if user is None:
        forget()
        return redirect(url_for("console.sign_in", reason="ended"))
    g.console_user = user
    session[SEEN_KEY] = now.timestamp()
    return None


def _live_user(db: Any, id_hash: str) -> ConsoleUser | None:
    row = db.get(ConsoleSession, id_hash)
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    role = ConsoleRole(row.role)
    if row.via == "sso":
        person = db.get(User, row.user_id)
        if person is None or not person.is_active or person.deprovisioned_at is not None:
            return None
        granted = role_of(db, row.org_id, person.id)
        if granted is None:
            return None
        role = granted
    organization = db.get(Organization, row.org_id)
    assert organization is not None
    return ConsoleUser(
        org_id=organization.id,
        org_slug=organization.slug,
        org_name=organization.name,
        email=row.email,
        role=role,
        user_id=row.user_id,
        via=row.via,
        session_hash=id_hash,
        expires_at=row.expires_at,
    )


def end_idle_session(id_hash: str) -> None:
    with unit_of_work() as db:
        row = db.get(ConsoleSession, id_hash)
        if row is not None and row.ended_at is None:
            actor = Actor(kind="console", label=row.email, request_id=current_request_id())
            ProvisioningService(db, row.org_id, actor).end_console_session(row, "idle")


def reader(view: F) -> F:
    """A page for anyone signed in to the console: org admins and security reviewers."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user_or_none() is None:
            if request.method == "GET":
                return redirect(url_for("console.sign_in"))
            abort(401)
        return view(*args, **kwargs)

    wrapped.console_access = "reader"  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def admin(view: F) -> F:
    """A page or action for org admins only: a security reviewer gets 403."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user_or_none()
        if user is None:
            if request.method == "GET":
                return redirect(url_for("console.sign_in"))
            abort(401)
        if not user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    wrapped.console_access = "admin"  # type: ignore[attr-defined]
    return wrapped  # type: ignore[return-value]


def public(view: F) -> F:
    """A page anyone may open: signing in."""
    view.console_access = "public"  # type: ignore[attr-defined]
    return view
