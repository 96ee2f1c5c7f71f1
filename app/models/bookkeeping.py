"""Counters kept beside the requests, outside the provisioning door like the rate limits: they
record how requests went, not what changed."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RequestErrors(Base):
    """A token's refused or failed requests (status 400 and over, but 404), per hour: the
    console's connection health shows an IdP whose pushes fail."""

    __tablename__ = "request_errors"

    token_id: Mapped[UUID] = mapped_column(
        ForeignKey("scim_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # hours since the epoch
    count: Mapped[int]
    last_status: Mapped[int]
    last_detail: Mapped[str] = mapped_column(String(300))
    last_at: Mapped[datetime]
