"""Webhook endpoints, the deliveries owed to them and each attempt."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class WebhookEndpoint(Base):
    """Where an organization's outbox events go; secrets are Fernet tokens (app/crypto.py)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str] | None] = mapped_column(JSON)  # None: all; "user.*": prefix
    is_enabled: Mapped[bool] = mapped_column(default=True)
    encrypted_secret: Mapped[str] = mapped_column(Text)
    encrypted_previous_secret: Mapped[str | None] = mapped_column(Text)  # signs too, until:
    previous_secret_until: Mapped[datetime | None]
    fanned_out_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # last seq queued
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


PENDING_ONLY: dict[str, Any] = {
    "postgresql_where": text("state = 'pending'"),
    "sqlite_where": text("state = 'pending'"),
}


class WebhookDelivery(Base):
    """One outbox event owed to one endpoint, leased while sent (`locked_until`), retried until
    delivered or dead; in order of `seq` per `stream` (the subject user's id, "" for none)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    org_id: Mapped[UUID] = mapped_column(ForeignKey("organizations.id"))
    endpoint_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_endpoints.id"))
    event_id: Mapped[UUID] = mapped_column(ForeignKey("outbox_events.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    stream: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(10), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    locked_by: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_org_id", "org_id", "created_at"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", **PENDING_ONLY),
        Index("ix_webhook_deliveries_stream", "endpoint_id", "stream", "seq", **PENDING_ONLY),
    )


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery: the answer's status (None: no answer), latency, error."""

    __tablename__ = "webhook_attempts"

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid4)
    delivery_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_deliveries.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[int | None]
    latency_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id", "at"),)
