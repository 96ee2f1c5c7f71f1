"""ORM models: the only place tables are described (schema changes go through Alembic)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow


class OveragePolicy(StrEnum):
    ALLOW = "allow"
    HOLD = "hold"


class BillingTerms(StrEnum):
    ANNUAL = "annual"
    QUARTERLY = "quarterly"
    CUSTOM = "custom"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    paid_seat_tier: Mapped[int] = mapped_column(default=0)
    contract_starts_on: Mapped[date | None]
    contract_ends_on: Mapped[date | None]
    billing_terms: Mapped[str] = mapped_column(String(20), default=BillingTerms.ANNUAL)
    overage_policy: Mapped[str] = mapped_column(String(10), default=OveragePolicy.ALLOW)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ScimToken]] = relationship(back_populates="organization")


class ScimToken(Base):
    __tablename__ = "scim_tokens"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the token, hex: the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(back_populates="tokens")

    __table_args__ = (UniqueConstraint("org_id", "label"),)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
