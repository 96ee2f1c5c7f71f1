"""C. Licensing through the provisioning service: a mapping rule on a 50,000-member group, and one
member joining a big vs a small mapped group. Calls the service directly, as the admin console
and the API do, one transaction per change."""

from __future__ import annotations

import time
from uuid import UUID

import psycopg
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.db import make_engine, make_sessions
from app.models import Organization
from app.provisioning import Actor, GroupSpec, MemberChange, ProvisioningService, RuleSpec
from bench.harness import Measurement, Postgres, freeze_garbage
from bench.plan import Plan, log
from bench.report import Report
from bench.seed import Directory, SeededGroup, organization_id, seed_directory
from bench.service import ORG_SLUG, BenchDatabase, prepare_database

DATABASE = "bench_licensing"
RULE_SECONDS_LIMIT = 10.0
RATIO_LIMIT = 2.0
ACTOR = Actor(kind="system", label="bench")


def _service(session: Session, org_id: UUID) -> ProvisioningService:
    organization = session.get(Organization, org_id)
    if organization is None:
        raise RuntimeError(f"organization {org_id} not found")
    return ProvisioningService(session, organization, ACTOR)


def run_licensing(postgres: Postgres, plan: Plan, report: Report) -> None:
    """Time the rule creation on the big group, then single-member changes on mapped groups."""
    scenario = f"C. licensing via the service, {plan.users:,} users"
    database, directory = seed_licensing_directory(postgres, plan, report)
    engine: Engine = make_engine(database.url)
    sessions: sessionmaker[Session] = make_sessions(engine)
    try:
        with sessions.begin() as session:
            # The guard would hold a 50,000-seat grant for an admin; this part times the
            # recomputation itself.
            _service(session, directory.org_id).set_guard_thresholds(
                plan.users * 2, 1.0, plan.users * 2, window_minutes=0
            )
        half, ten = directory.big, directory.small
        for group, is_big in ((half, True), (ten, False)):
            took = time_rule_creation(sessions, directory.org_id, group, scenario, report)
            if is_big:
                members = len(group.member_indexes)
                check_rule_effect(database.conninfo, directory.org_id, members, report)
                report.target(
                    f"create rule on a {members:,}-member group",
                    f"< {RULE_SECONDS_LIMIT:.0f} s",
                    f"{took:.2f} s",
                    took < RULE_SECONDS_LIMIT,
                )
        measured = time_member_changes(sessions, directory, scenario, plan.licensing_iterations)
        report.measurements += measured.values()
        for action in ("add", "remove"):
            report.target_p50_ratio(
                f"1-member {action} with a mapping rule: {len(half.member_indexes):,}-member "
                "vs 10-member group (service)",
                measured[(half.display_name, action)],
                measured[(ten.display_name, action)],
                RATIO_LIMIT,
            )
    finally:
        engine.dispose()
    postgres.drop(DATABASE)


def seed_licensing_directory(
    postgres: Postgres, plan: Plan, report: Report
) -> tuple[BenchDatabase, Directory]:
    """A fresh database whose organization has a paid-seat tier of every user, and its
    directory with the big group named Half and the small one Ten."""
    log(f"C: creating database {DATABASE}")
    database = prepare_database(postgres, DATABASE, paid_seats=plan.users)
    org_id = organization_id(database.conninfo, ORG_SLUG)
    log(f"C: seeding {plan.users:,} users, group Half of {plan.big_group:,}")
    directory = seed_directory(
        database.conninfo,
        org_id,
        plan.users,
        plan.groups,
        plan.big_group,
        big_name="Half",
        small_name="Ten",
    )
    freeze_garbage()
    report.notes.append(
        f"C: the organization has a paid-seat tier of {plan.users:,} (policy allow) and its "
        "mass-grant guard raised above the directory's size, its window off "
        "(set_guard_thresholds), so the rule is applied at once rather than held for an "
        "admin's confirmation."
    )
    return database, directory


def time_rule_creation(
    sessions: sessionmaker[Session],
    org_id: UUID,
    group: SeededGroup,
    scenario: str,
    report: Report,
) -> float:
    """Create a rule giving `group`'s members a paid role everywhere, in one transaction;
    record and return how long it took, commit included."""
    log(f"C: creating the mapping rule on {group.display_name!r}")
    began = time.perf_counter()
    with sessions.begin() as session:
        _service(session, org_id).create_rule(
            RuleSpec(
                match="displayName",
                group_value=group.display_name,
                role_key="team_member",
                project_key="*",
                priority=0,
            )
        )
    took = time.perf_counter() - began
    members = len(group.member_indexes)
    report.measurements.append(
        Measurement(
            scenario=scenario,
            operation=f"create rule on {group.display_name!r} ({members:,} members)",
            latencies=[took],
            elapsed=took,
            items=members,
            unit="users",
            note="one transaction, commit included; recomputes roles and seats",
        )
    )
    return took


def time_member_changes(
    sessions: sessionmaker[Session], directory: Directory, scenario: str, iterations: int
) -> dict[tuple[str, str], Measurement]:
    """Add and remove one user outside every group to and from the big and the small group,
    each change in its own transaction; the measurements by (group name, "add" or "remove")."""
    half, ten = directory.big, directory.small
    movers = [directory.user_ids[i] for i in directory.ungrouped[:2]]
    if len(movers) < 2:
        raise RuntimeError("the seeded directory has too few users outside every group")
    log(f"C: {iterations} single-member add+remove on Half and Ten")
    timings: dict[tuple[str, str], list[float]] = {}
    targets = ((half, movers[0]), (ten, movers[1]))
    for _ in range(iterations):
        for group, mover in targets:
            for action, change in (
                ("add", MemberChange(added=[str(mover)])),
                ("remove", MemberChange(removed=[str(mover)])),
            ):
                began = time.perf_counter()
                with sessions.begin() as session:
                    service = _service(session, directory.org_id)
                    service.update_group(group.id, _spec(group), change)
                timings.setdefault((group.display_name, action), []).append(
                    time.perf_counter() - began
                )
    measured: dict[tuple[str, str], Measurement] = {}
    for (name, action), latencies in timings.items():
        size = len(half.member_indexes) if name == half.display_name else 10
        measured[(name, action)] = Measurement(
            scenario=scenario,
            operation=f"1-member {action}, mapped group of {size:,} ({name})",
            latencies=latencies,
            elapsed=sum(latencies),
            items=len(latencies),
            unit="tx",
            note="update_group in its own transaction, commit included",
        )
    return measured


def _spec(group: SeededGroup) -> GroupSpec:
    # Same name and externalId: a rename would (rightly) recompute every member.
    return GroupSpec(display_name=group.display_name, external_id=group.external_id)


def check_rule_effect(conninfo: str, org_id: UUID, members: int, report: Report) -> None:
    """The rule must actually have granted what it says, or the timing means nothing."""
    with psycopg.connect(conninfo) as connection:
        assigned = connection.execute(
            "SELECT count(DISTINCT user_id) FROM role_assignments WHERE org_id = %s", (org_id,)
        ).fetchone()
        paid = connection.execute(
            "SELECT count(*) FROM users WHERE org_id = %s AND seat = 'paid'", (org_id,)
        ).fetchone()
    assigned_count = int(assigned[0]) if assigned else 0
    paid_count = int(paid[0]) if paid else 0
    report.notes.append(
        f"C: after the rule on Half: {assigned_count:,} users with a role assignment, "
        f"{paid_count:,} paid seats (expected {members:,} each)."
    )
    if assigned_count != members or paid_count != members:
        report.problems.append(
            f"C: the rule on Half should give {members:,} users a role and a paid seat; "
            f"found {assigned_count:,} with a role and {paid_count:,} paid seats"
        )
