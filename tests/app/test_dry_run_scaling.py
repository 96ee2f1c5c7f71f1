"""A dry run's cost is linear in its rules (issue #16 item 1): its rule changes are written one
by one and their users recomputed once, not once per rule under every rule before it; what it
reports is what the same changes made one at a time would do. Times are bench/'s business
(`python -m bench.dry_run_bench`); these tests count the work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from app import provisioning
from app.admin import changes
from app.admin.changes import ProposedChange, RuleEdit, RuleInput
from app.models import AuditEvent, MappingRule, Organization
from app.provisioning import Actor, GroupSpec, ProvisioningService, RuleSpec, UserSpec

ADMIN = Actor(kind="api", label="admin")
USERS = 40
PROJECTS = 16


@pytest.fixture
def org(session: Session) -> Iterator[Organization]:
    """An organization whose USERS users are all in Everyone (View Only everywhere), with
    PROJECTS projects and the mass-grant guard out of the way."""
    organization = provisioning.create_organization(session, "Acme", "acme-scale", paid_seats=999)
    service = ProvisioningService(session, organization, ADMIN)
    service.set_guard_thresholds(999, 1.0, 999, window_minutes=0)
    for p in range(PROJECTS):
        service.create_project(f"p{p}", f"Project {p}")
    users = [service.create_user(UserSpec(user_name=f"u{n}@x.example")) for n in range(USERS)]
    service.create_group(GroupSpec("Everyone", member_ids=[str(u.id) for u in users]))
    service.create_group(GroupSpec("Staff", member_ids=[str(u.id) for u in users[:10]]))
    service.create_rule(RuleSpec("displayName", "Everyone", "view_only"))
    yield organization


def new_rules(count: int) -> ProposedChange:
    """`count` rules giving Everyone Team Member, each in a project of its own."""
    return ProposedChange(
        add_rules=[RuleInput("Everyone", "team_member", project=f"p{p}") for p in range(count)]
    )


class Work:
    """The SQL statements run, and the rows the queries read (PostgreSQL reports a SELECT's
    row count; SQLite does not)."""

    def __init__(self) -> None:
        self.statements = 0
        self.rows = 0

    def seen(self, statement: str, cursor: Any) -> None:
        self.statements += 1
        if statement.lstrip().upper().startswith("SELECT"):
            self.rows += max(cursor.rowcount, 0)


@contextmanager
def counting(session: Session) -> Iterator[Work]:
    connection = session.connection()
    work = Work()

    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        work.seen(statement, cursor)

    event.listen(connection, "after_cursor_execute", after)
    try:
        yield work
    finally:
        event.remove(connection, "after_cursor_execute", after)


def dry_run_work(session: Session, org: Organization, rules: int) -> Work:
    """The work of a dry run of `rules` new rules; each reaches every user."""
    with counting(session) as work:
        outcome = changes.dry_run(ProvisioningService(session, org, ADMIN), new_rules(rules))
    assert len(outcome.result.changes) == USERS and outcome.held == ()
    return work


@pytest.mark.postgresql_only
def test_a_dry_runs_work_grows_linearly_with_its_rules_not_with_rules_times_users(
    session: Session, org: Organization
) -> None:
    small, double, quadruple = (dry_run_work(session, org, n) for n in (4, 8, 16))
    # Each further rule costs its own few statements and rows, whatever the users: one at a
    # time, every rule re-read all USERS users, their groups and their growing assignments.
    for fewer, more, added in ((small, double, 4), (double, quadruple, 8)):
        assert more.statements - fewer.statements <= 10 * added
        assert more.rows - fewer.rows <= USERS // 4 * added
    # Doubling the rules doubles the added work, no more: the cost is linear.
    assert quadruple.rows - double.rows <= 2.5 * (double.rows - small.rows)
    assert quadruple.statements - double.statements <= 2.5 * (double.statements - small.statements)


def test_a_dry_run_reports_what_its_changes_one_at_a_time_would_do(
    session: Session, org: Organization
) -> None:
    service = ProvisioningService(session, org, ADMIN)
    staff = service.create_rule(RuleSpec("displayName", "Staff", "client", "p0"))
    editors = service.create_rule(RuleSpec("displayName", "Staff", "comment_only", "p1"))
    assert isinstance(staff, MappingRule) and isinstance(editors, MappingRule)
    proposal = ProposedChange(
        remove_rules=[str(staff.id)],
        edit_rules=[(str(editors.id), RuleEdit(group="Everyone", role="team_member"))],
        add_rules=[
            RuleInput("Staff", "project_admin", project="p2"),
            RuleInput("Everyone", "client", project="p3"),
        ],
    )

    def one_at_a_time(trial: ProvisioningService) -> None:
        trial.delete_rule(staff.id)
        trial.update_rule(editors.id, RuleSpec("displayName", "Everyone", "team_member", "p1"))
        trial.create_rule(RuleSpec("displayName", "Staff", "project_admin", "p2"))
        trial.create_rule(RuleSpec("displayName", "Everyone", "client", "p3"))

    events = session.scalar(select(func.count()).select_from(AuditEvent))
    together = changes.dry_run(service, proposal).result
    alone = service.dry_run(one_at_a_time)
    assert together == alone
    assert len(together.changes) == USERS and together.held == ()
    assert together.totals_after.paid == USERS != together.totals_before.paid
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events


def test_a_dry_run_over_the_guard_shows_its_new_rules_held_together(
    session: Session, org: Organization
) -> None:
    service = ProvisioningService(session, org, ADMIN)
    service.set_guard_thresholds(5, 1.0, 999, window_minutes=0)
    outcome = changes.dry_run(service, new_rules(3))
    # Staged whole, as one rule's grants are: nothing applies, each user is held once.
    assert outcome.result.changes == ()
    assert outcome.result.totals_after == outcome.result.totals_before
    [held] = outcome.held
    assert held.reason == "rule_created" and held.user_count == USERS
    assert held.new_paid_seats == USERS


def test_a_dry_run_edit_that_rebinds_reaches_the_group_named_now(
    session: Session, org: Organization
) -> None:
    service = ProvisioningService(session, org, ADMIN)
    first, second = (service.create_user(UserSpec(user_name=f"t{n}@x.example")) for n in (1, 2))
    old = service.create_group(GroupSpec("Team", member_ids=[str(first.id)]))
    rule = service.create_rule(RuleSpec("displayName", "Team", "team_member", "p0"))
    assert isinstance(rule, MappingRule)
    service.delete_group(str(old.id))
    service.create_group(GroupSpec("Team", member_ids=[str(second.id)]))
    proposal = ProposedChange(edit_rules=[(str(rule.id), RuleEdit(rebind=True))])
    [change] = changes.dry_run(service, proposal).result.changes
    assert change.user_id == str(second.id)
    assert session.get(MappingRule, rule.id) is not None
    assert (
        session.scalar(select(MappingRule.bound_group_id).where(MappingRule.id == rule.id))
        == old.id
    )
