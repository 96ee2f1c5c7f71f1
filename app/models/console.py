"""The console's own tables: who may use it (group grants), bootstrap links and sessions."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class ConsoleGrant(Base):
    """Members of an IdP group may use the console in a role (admin or reviewer)."""

    __tablename__ = "console_grants"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    group_id: Mapped[UUID] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("org_id", "group_id"),)


class ConsoleLink(Base):
    """A one-time bootstrap link for first setup; only its hash is kept."""

    __tablename__ = "console_links"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_console_links_org_id", "org_id", "created_at"),)


class ConsoleSession(Base):
    """A signed-in console user; the cookie carries only the random id whose hash is kept.
    A session opened through SSO follows its user (deactivation ends it); `via` says how."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[UUID | None] = mapped_column(ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(8))  # link | sso
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_console_sessions_user_id", "user_id"),)
