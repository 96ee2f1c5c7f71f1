"""Reads for the console's Access review and Audit pages: the reports of app/reporting (the
same rows the admin API and the CLI export), narrowed by the console's user search, a bounded
page at a time. Nothing here writes; every read is scoped to one organization.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

import licensing
from app import audit, reporting
from app.actions import Target
from app.models import Group, Organization, Project
from app.provisioning import Actor, ProvisioningService
from app.reporting import AccessFilters, AuditFilters
from app.reporting.lookups import user_names

# Reports only read: the service is asked for the role catalogue and the drift, never a change.
READER = Actor(kind="console", label="report")
PAGE_SIZE = 100
# A page further than this is a job for the export, which streams every row.
MAX_START = 50_000
# The change report's `change` column (app/reporting/changes.py).
CHANGE_KINDS = (
    "granted",
    "changed",
    "revoked",
    "seat_gained",
    "seat_released",
    "seat_pending",
    "pending_ended",
    "seat_changed",
)


@dataclass(frozen=True, slots=True)
class Page:
    """Rows [start, start + size) of a report, and whether more follow."""

    rows: list[dict[str, Any]]
    start: int
    size: int
    has_more: bool

    @property
    def next_start(self) -> int | None:
        return self.start + self.size if self.has_more else None

    @property
    def previous_start(self) -> int | None:
        return max(self.start - self.size, 0) if self.start > 0 else None


def page_of(rows: Iterable[dict[str, Any]], start: int, size: int | None = None) -> Page:
    """One page of a stream of rows (PAGE_SIZE unless `size`): reads `start + size + 1` rows
    at most and holds one page."""
    size = PAGE_SIZE if size is None else size
    window = list(islice(rows, start, start + size + 1))
    return Page(window[:size], start, size, len(window) > size)


def with_user(rows: Iterable[dict[str, Any]], search: str | None) -> Iterator[dict[str, Any]]:
    """The rows whose userName contains `search` (any case); all rows without one."""
    if not search:
        yield from rows
        return
    needle = search.lower()
    for row in rows:
        if needle in str(row.get("userName") or "").lower():
            yield row


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """What the filter forms offer: the organization's projects and the role catalogue."""

    projects: list[str]
    roles: list[licensing.Role]


def filter_choices(session: Session, organization: Organization) -> FilterChoices:
    projects = session.scalars(
        select(Project.key).where(Project.org_id == organization.id).order_by(Project.key)
    )
    catalogue = ProvisioningService(session, organization, READER).catalogue()
    return FilterChoices([licensing.ALL_PROJECTS, *projects], list(catalogue.roles))


# ------------------------------------------------------------------ access


@dataclass(frozen=True, slots=True)
class AccessQuery:
    """The access report's filters (app.reporting.AccessFilters), as of a moment or now, and
    the console's user search."""

    filters: AccessFilters
    as_of: datetime | None = None
    search: str | None = None


def check_access_query(session: Session, organization: Organization, query: AccessQuery) -> None:
    """NotFoundError for a group no one can find (also by a name it had then, as of a past
    moment), before a response starts: a streamed export cannot answer an error later."""
    if query.filters.group:
        reporting.find_group_ids(
            session, organization, query.filters.group, history=query.as_of is not None
        )


def access_rows(
    session: Session, organization: Organization, query: AccessQuery
) -> Iterator[dict[str, Any]]:
    """One row per user and role (a user without one gets one row), by user."""
    catalogue = ProvisioningService(session, organization, READER).catalogue()
    rows = reporting.access_report(session, organization, catalogue, query.filters, query.as_of)
    return with_user(rows, query.search)


# ----------------------------------------------------------------- changes


@dataclass(frozen=True, slots=True)
class ChangeQuery:
    """The change report's period [since, until) and what the console narrows it to."""

    since: datetime
    until: datetime
    search: str | None = None
    change: str | None = None  # one of CHANGE_KINDS
    project: str | None = None


def change_rows(
    session: Session, organization: Organization, query: ChangeQuery
) -> Iterator[dict[str, Any]]:
    """Roles granted, changed, revoked and seats moved in the period, oldest first."""
    rows = reporting.change_report(session, organization, query.since, query.until)
    for row in with_user(rows, query.search):
        if query.change and row["change"] != query.change:
            continue
        if query.project and row["project"] != query.project:
            continue
        yield row


# ----------------------------------------------------------- renewal, drift


def renewal(
    session: Session, organization: Organization, reclaim_days: int, grace_days: int
) -> dict[str, Any]:
    """The renewal report (app.reporting.renewal): months, seats now, reclaim, forecast."""
    return reporting.renewal_report(session, organization, reclaim_days, grace_days)


@dataclass(frozen=True, slots=True)
class Drift:
    """Rules whose group is gone or renamed, and a page of users whose roles differ."""

    missing_rule_groups: list[dict[str, Any]]
    renamed_rule_groups: list[dict[str, Any]]
    users: Page


def drift(session: Session, organization: Organization, search: str | None, start: int) -> Drift:
    rules = reporting.rule_groups(session, organization)
    users = ProvisioningService(session, organization, READER).drift()
    return Drift(
        rules["missing_rule_groups"],
        rules["renamed_rule_groups"],
        page_of(with_user(users, search), start),
    )


def drift_rows(
    session: Session, organization: Organization, search: str | None
) -> Iterator[dict[str, Any]]:
    """The whole drift report as one table (rules first, then users), for export."""
    rules = reporting.rule_groups(session, organization)
    users = with_user(ProvisioningService(session, organization, READER).drift(), search)
    return reporting.drift_rows(rules, users)


# ------------------------------------------------------------------- audit


def check_audit_filters(
    session: Session, organization: Organization, user: str | None, group: str | None
) -> tuple[str | None, list[str] | None]:
    """The ids a user and group filter name; NotFoundError when one names nothing."""
    user_id = reporting.find_user_id(session, organization, user) if user else None
    group_ids = reporting.find_group_ids(session, organization, group) if group else None
    return user_id, group_ids


def audit_page(
    session: Session,
    organization: Organization,
    filters: AuditFilters,
    after: str | None,
) -> dict[str, Any]:
    """A page of events (PAGE_SIZE) in chain order after the cursor, keyset-paged by
    sequence number: no repeats, no gaps."""
    return reporting.audit_page(session, organization, filters, after, PAGE_SIZE)


def target_names(
    session: Session, organization: Organization, events: Iterable[dict[str, Any]]
) -> dict[str, str]:
    """The current names of the users and groups a page of events is about, by id: the trail
    records ids, a reviewer reads names (a deleted group has none left to show)."""
    users: set[str] = set()
    groups: list[UUID] = []
    for event in events:
        target = event["target_id"]
        if target and event["target_type"] == Target.USER:
            users.add(target)
        elif target and event["target_type"] == Target.GROUP:
            try:
                groups.append(UUID(target))
            except ValueError:
                continue
    names = user_names(session, organization.id, users)
    found = session.execute(
        select(Group.id, Group.display_name).where(
            Group.org_id == organization.id, Group.id.in_(groups)
        )
    )
    return names | {str(group_id): name for group_id, name in found}


def audit_rows(
    session: Session, organization: Organization, filters: AuditFilters
) -> Iterator[dict[str, Any]]:
    return reporting.audit_events(session, organization, filters)


def verify(session: Session, organization: Organization) -> audit.Verification:
    """The organization's hash chain walked from its first event (`audit verify`)."""
    return audit.verify(session, organization.id)
