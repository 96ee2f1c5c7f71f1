"""The keys that sign the hand-off to Blue: added and retired, in the service's own audit
chain (they belong to no one organization)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.actions import Action, Target
from app.audit import Actor
from app.db import utcnow
from app.models import SigningKey
from app.provisioning import events


def add_signing_key(session: Session, key: SigningKey, actor: Actor) -> None:
    """Start signing with a new key; its public half goes in the trail."""
    session.add(key)
    session.flush()
    events.record_service(
        session, actor, Action.HANDOFF_KEY_CREATED, Target.SIGNING_KEY, key.kid, key.public_jwk
    )


def retire_signing_keys(session: Session, keys: Sequence[SigningKey], actor: Actor) -> None:
    """Stop signing with these keys (they stay published a while, see app.handoff)."""
    now = utcnow()
    for key in keys:
        key.retired_at = now
        events.record_service(
            session, actor, Action.HANDOFF_KEY_RETIRED, Target.SIGNING_KEY, key.kid
        )
