"""Read-only lookups for the admin API and CLI, always scoped to one organization."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypeVar
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.errors import NotFoundError
from app.models import CustomRole, HeldChange, MappingRule, Organization, Project, User

HELD_STATUSES = ("held", "confirmed", "discarded")
Owned = TypeVar("Owned", MappingRule, HeldChange)


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def list_projects(session: Session, organization: Organization) -> Sequence[Project]:
    """The organization's projects, by key."""
    return session.scalars(
        select(Project).where(Project.org_id == organization.id).order_by(Project.key)
    ).all()


def list_custom_roles(session: Session, organization: Organization) -> Sequence[CustomRole]:
    """The organization's custom roles, highest rank first."""
    return session.scalars(
        select(CustomRole)
        .where(CustomRole.org_id == organization.id)
        .order_by(CustomRole.rank.desc(), CustomRole.key)
    ).all()


def list_rules(session: Session, organization: Organization) -> Sequence[MappingRule]:
    """The organization's mapping rules, oldest first."""
    return session.scalars(
        select(MappingRule)
        .where(MappingRule.org_id == organization.id)
        .order_by(MappingRule.created_at, MappingRule.id)
        .options(selectinload(MappingRule.bound_group))
    ).all()


def get_rule(session: Session, organization: Organization, rule_id: str) -> MappingRule:
    """One of the organization's rules; another organization's rule is NotFoundError too."""
    return _one_of(session, organization, MappingRule, rule_id, "mapping rule")


def list_held_changes(
    session: Session, organization: Organization, status: str | None = None, limit: int = 100
) -> Sequence[HeldChange]:
    """Held changes, newest first, optionally only those with this status."""
    query = select(HeldChange).where(HeldChange.org_id == organization.id)
    if status is not None:
        query = query.where(HeldChange.status == status)
    return session.scalars(
        query.order_by(HeldChange.created_at.desc(), HeldChange.id).limit(limit)
    ).all()


def get_held_change(session: Session, organization: Organization, held_id: str) -> HeldChange:
    """One of the organization's held changes, whatever its status, or NotFoundError."""
    return _one_of(session, organization, HeldChange, held_id, "held change")


def _one_of(
    session: Session, organization: Organization, model: type[Owned], row_id: str, label: str
) -> Owned:
    """A row of the organization by id; another organization's row is NotFoundError too."""
    parsed = _uuid(row_id)
    row = session.get(model, parsed) if parsed is not None else None
    if row is None or row.org_id != organization.id:
        raise NotFoundError(f"{label} {row_id} not found")
    return row


def find_user(session: Session, organization: Organization, reference: str) -> User:
    """A user by id or by userName (case-insensitive), deprovisioned ones included."""
    parsed = _uuid(reference)
    user = None
    if parsed is not None:
        user = session.scalar(select(User).where(User.id == parsed, User.org_id == organization.id))
    if user is None:
        user = session.scalar(
            select(User).where(
                User.org_id == organization.id, User.user_name_key == reference.lower()
            )
        )
    if user is None:
        raise NotFoundError(f"user {reference!r} not found")
    return user


def user_names(
    session: Session, organization: Organization, user_ids: Collection[str]
) -> dict[str, str]:
    """userName by user id, for the given ids."""
    ids = [u for u in (_uuid(i) for i in user_ids) if u is not None]
    names: dict[str, str] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for user_id, user_name in session.execute(
            select(User.id, User.user_name).where(
                User.org_id == organization.id, User.id.in_(chunk)
            )
        ):
            names[str(user_id)] = user_name
    return names
