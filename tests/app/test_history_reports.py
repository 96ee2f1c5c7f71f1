"""Reports tell the history as it was (issue #13, item 4): the contract is versioned and each
month is told by the contract of that month; pending and overage read as such; groups keep the
name they had; seat totals count each active user once; seat history stops at today; reclaim
candidates leave new users their grace period."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from app import db, migrate, reporting
from app.db import UTCDateTime, make_engine
from app.models import Group, Organization, SeatEvent, User
from app.provisioning import (
    Actor,
    ContractSpec,
    GroupSpec,
    MemberChange,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)
from app.reporting import AccessFilters
from tests.support import admin_token

ACTOR = Actor(kind="scim", label="okta")


@pytest.fixture
def org(organization: tuple[Organization, str]) -> Organization:
    return organization[0]


@pytest.fixture
def service(session: Session, org: Organization) -> ProvisioningService:
    return ProvisioningService(session, org, ACTOR)


@pytest.fixture
def api(client: FlaskClient, session: Session, org: Organization) -> Any:
    token = admin_token(session, org)

    def get(path: str, **params: Any) -> Any:
        return client.get(
            "/api/v1" + path,
            query_string=params,
            headers={"Authorization": f"Bearer {token}"},
        )

    return get


def join(service: ProvisioningService, target: Group, user: User) -> None:
    spec = GroupSpec(target.display_name, target.external_id)
    service.update_group(target.id, spec, MemberChange(added=[str(user.id)]))


def leave(service: ProvisioningService, target: Group, user: User) -> None:
    spec = GroupSpec(target.display_name, target.external_id)
    service.update_group(target.id, spec, MemberChange(removed=[str(user.id)]))


def tick(session: Session) -> datetime:
    """Commit, and take an instant strictly between what came before and what comes after."""
    session.commit()
    time.sleep(0.002)
    instant = datetime.now(UTC)
    time.sleep(0.002)
    return instant


def cli_json(runner: FlaskCliRunner, *args: str) -> Any:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def month_start(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


# ------------------------------------------------------------ contract versions


def test_contract_versions_are_kept_from_creation_and_each_change(
    service: ProvisioningService, session: Session, org: Organization
) -> None:
    from app.models import ContractVersion  # new with the versions: the module fails alone

    def versions() -> list[tuple[int, str, date | None]]:
        rows = session.scalars(
            select(ContractVersion)
            .where(ContractVersion.org_id == org.id)
            .order_by(ContractVersion.effective_at, ContractVersion.id)
        )
        return [(r.paid_seat_tier, r.overage_policy, r.contract_starts_on) for r in rows]

    first = session.scalars(select(ContractVersion).where(ContractVersion.org_id == org.id)).one()
    assert first.effective_at == org.created_at  # the contract the organization started with
    assert versions() == [(100, "allow", None)]
    before = datetime.now(UTC)
    service.set_contract(ContractSpec(5, "hold", "annual", date(2026, 1, 1), date(2027, 1, 1)))
    service.set_contract(ContractSpec(5, "hold", "annual", date(2026, 1, 1), date(2027, 1, 1)))
    service.set_contract(ContractSpec(8, "hold", "annual", date(2026, 1, 1), date(2027, 1, 1)))
    session.commit()
    # An unchanged contract is no new version; each change is one, effective when it was set.
    assert versions() == [
        (100, "allow", None),
        (5, "hold", date(2026, 1, 1)),
        (8, "hold", date(2026, 1, 1)),
    ]
    history = reporting.contract_history(session, org)
    assert history.at(before - timedelta(seconds=1)).paid_seat_tier == 100
    assert history.at(datetime.now(UTC)).paid_seat_tier == org.paid_seat_tier == 8


ORG_COLUMNS_0009 = (
    "id",
    "name",
    "slug",
    "paid_seat_tier",
    "billing_terms",
    "overage_policy",
    "paid_seat_count",
    "guard_max_new_paid_seats",
    "guard_max_new_paid_share",
    "guard_max_new_project_admins",
    "sso_manages_groups",
    "sso_no_role_policy",
)


def test_migration_backfills_one_contract_version_per_organization(
    empty_database_url: str,
) -> None:
    from alembic import command

    config = migrate.alembic_config(empty_database_url)
    command.upgrade(config, "0009")
    engine: Engine = make_engine(empty_database_url)
    created = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    # The table as revision 0009 has it (the models may have grown since).
    organizations = sa.table(
        "organizations",
        *(sa.column(name, sa.Uuid() if name == "id" else None) for name in ORG_COLUMNS_0009),
        sa.column("contract_starts_on", sa.Date()),
        sa.column("created_at", UTCDateTime()),
    )
    try:
        with engine.begin() as connection:
            for slug, tier, policy in (("acme", 12, "hold"), ("globex", 0, "allow")):
                connection.execute(
                    organizations.insert().values(
                        id=uuid.uuid4(),
                        name=slug,
                        slug=slug,
                        paid_seat_tier=tier,
                        contract_starts_on=date(2025, 1, 1),
                        billing_terms="annual",
                        overage_policy=policy,
                        paid_seat_count=0,
                        guard_max_new_paid_seats=50,
                        guard_max_new_paid_share=0.2,
                        guard_max_new_project_admins=10,
                        sso_manages_groups=True,
                        sso_no_role_policy="refuse",
                        created_at=created,
                    )
                )
        command.upgrade(config, "head")
        with Session(engine) as session:
            for organization in session.query(Organization):
                history = reporting.contract_history(session, organization)
                [(effective_at, contract)] = history.versions
                assert effective_at == organization.created_at == created
                assert (contract.paid_seat_tier, contract.policy, contract.starts_on) == (
                    organization.paid_seat_tier,
                    organization.overage_policy,
                    date(2025, 1, 1),
                )
            assert session.query(Organization).count() == 2
    finally:
        engine.dispose()


# ---------------------------------------------------------------- renewal report


def test_renewal_tells_each_month_by_its_contract_with_overage_and_pending(
    service: ProvisioningService, session: Session, org: Organization
) -> None:
    from app.models import ContractVersion

    today = datetime.now(UTC).date()
    start = month_start(today, 2)
    service.set_contract(
        ContractSpec(2, "allow", "annual", start, start.replace(year=start.year + 1))
    )
    users = [service.create_user(UserSpec(f"u{i}@acme.example")) for i in range(7)]
    session.commit()

    def day(back: int, number: int) -> datetime:
        return midnight(month_start(today, back)) + timedelta(days=number - 1, hours=12)

    # Tier 2 (allow) before the contract starts, 5 (hold) from mid-month m-1, 2 (allow) again
    # from the first instant of this month.
    session.execute(delete(ContractVersion).where(ContractVersion.org_id == org.id))
    for at, tier, policy in (
        (midnight(start) - timedelta(days=30), 2, "allow"),
        (day(1, 15), 5, "hold"),
        (midnight(month_start(today, 0)), 2, "allow"),
    ):
        session.add(
            ContractVersion(
                org_id=org.id,
                effective_at=at,
                paid_seat_tier=tier,
                overage_policy=policy,
                billing_terms="annual",
            )
        )

    def ledger(user: int, at: datetime, before: str, after: str, pending: bool = False) -> None:
        session.add(
            SeatEvent(
                org_id=org.id,
                user_id=users[user].id,
                from_seat=before,
                to_seat=after,
                is_pending=pending,
                reason="test",
                cause="test",
                at=at,
            )
        )

    ledger(0, day(2, 3), "none", "paid")
    ledger(1, day(2, 4), "none", "paid")
    ledger(2, day(2, 5), "none", "paid")  # 3 paid over a tier of 2: overage 1
    ledger(2, day(2, 6), "paid", "none")
    ledger(3, day(1, 10), "none", "free", pending=True)  # waits on a free seat
    ledger(4, day(1, 12), "none", "none", pending=True)  # waits with no seat at all
    ledger(5, day(1, 13), "none", "free")
    ledger(3, day(1, 20), "free", "paid")  # promoted under tier 5
    ledger(6, day(1, 25), "none", "free", pending=True)  # still waiting at the end of m-1
    ledger(4, midnight(month_start(today, 0)), "none", "paid")  # tier 2 again, allow: overage
    session.commit()

    report = reporting.renewal_report(session, org)
    rows = [
        (
            m["tier"],
            m["policy"],
            m["peak_paid"],
            m["end_paid"],
            m["overage"],
            m["end_free"],
            m["end_pending"],
        )
        for m in report["months"]
    ]
    assert rows == [
        (2, "allow", 3, 2, 1, 0, 0),
        (5, "hold", 3, 3, 0, 1, 2),  # free: u5 (u6 waits on hers: pending, not free)
        (2, "allow", 4, 4, 2, 1, 1),
    ]
    assert [v["tier"] for v in report["contract_versions"]] == [2, 5, 2]
    assert report["months"][1]["utilisation"] == 0.6


def test_reclaim_candidates_leave_users_their_grace_period(
    service: ProvisioningService,
    session: Session,
    org: Organization,
    runner: FlaskCliRunner,
    api: Any,
) -> None:
    engineering = service.create_group(GroupSpec("Engineering"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    old, new, returning = (
        service.create_user(UserSpec(f"{name}@acme.example")) for name in ("old", "new", "back")
    )
    for user in (old, new, returning):
        join(service, engineering, user)
    session.commit()
    now = datetime.now(UTC)
    # Old was provisioned 90 days ago and never logged in; new 5 days ago; the returning user
    # was provisioned 90 days ago but got their paid seat back 3 days ago.
    for user, created, seated in ((old, 90, 90), (new, 5, 5), (returning, 90, 3)):
        session.execute(
            update(User).where(User.id == user.id).values(created_at=now - timedelta(days=created))
        )
        session.execute(
            update(SeatEvent)
            .where(SeatEvent.user_id == user.id)
            .values(at=now - timedelta(days=seated))
        )
    session.commit()

    def candidates(**options: int) -> int:
        count: int = reporting.renewal_report(session, org, **options)["reclaim_candidates"]
        return count

    assert candidates() == 1  # old only: the default grace is 30 days
    assert candidates(grace_days=0) == 3
    assert candidates(grace_days=4) == 2  # old and new: the returning user got it 3 days ago
    report = cli_json(runner, "report", "renewal", "--org", "acme", "--json", "--grace-days", "10")
    assert (report["reclaim_candidates"], report["reclaim_grace_days"]) == (1, 10)
    document = api("/reports/renewal", grace_days=0).json
    assert (document["reclaim_candidates"], document["reclaim_grace_days"]) == (3, 0)
    assert api("/reports/renewal", grace_days=-1).status_code == 400


# ---------------------------------------------------------------- changes report


def test_change_report_names_pending_and_overage(
    service: ProvisioningService, session: Session, org: Organization
) -> None:
    engineering = service.create_group(GroupSpec("Engineering"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))
    bob, carol = (service.create_user(UserSpec(f"{n}@acme.example")) for n in ("bob", "carol"))
    start = tick(session)
    join(service, engineering, bob)
    join(service, engineering, carol)  # the tier is full: carol waits, with no free role
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="allow"))  # carol over the tier
    leave(service, engineering, carol)
    end = tick(session)
    seats = [
        (r["userName"].split("@")[0], r["change"], r["seat_before"], r["seat_after"])
        for r in reporting.change_report(session, org, start, end)
        if r["change"] not in ("granted", "changed", "revoked")
    ]
    assert seats == [
        ("bob", "seat_gained", "none", "paid"),
        ("carol", "seat_pending", "none", "pending"),
        ("carol", "seat_gained", "pending", "paid (overage)"),
        ("carol", "seat_released", "paid", "none"),
    ]


# ------------------------------------------------------------ access as of a date


def test_access_as_of_names_groups_as_they_were_named_then(
    service: ProvisioningService, session: Session, org: Organization, runner: FlaskCliRunner
) -> None:
    engineering = service.create_group(GroupSpec("Engineering"))
    contractors = service.create_group(GroupSpec("Contractors"))
    service.create_project("web", "Website")
    # Rules by group id: a rename keeps the grant, so only the name in the report changes.
    service.create_rule(RuleSpec("id", str(engineering.id), "team_member"))
    service.create_rule(RuleSpec("id", str(contractors.id), "project_admin", "web"))
    alice = service.create_user(UserSpec("alice@acme.example"))
    join(service, engineering, alice)
    join(service, contractors, alice)
    before = tick(session)
    service.update_group(engineering.id, GroupSpec("Platform"))
    after_rename = tick(session)
    service.delete_group(contractors.id)
    later = tick(session)

    def groups(as_of: datetime | None) -> dict[str, list[str]]:
        rows = reporting.access_report(session, org, service.catalogue(), AccessFilters(), as_of)
        return {row["project"]: row["groups"] for row in rows}

    assert groups(before) == {"*": ["Engineering"], "web": ["Contractors"]}
    assert groups(after_rename) == {"*": ["Platform"], "web": ["Contractors"]}
    assert groups(later) == {"*": ["Platform"]}
    assert groups(None) == {"*": ["Platform"]}
    result = runner.invoke(
        args=[
            "report",
            "access",
            "--org",
            "acme",
            "--as-of",
            before.isoformat(),
            "--format",
            "jsonl",
        ]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert sorted(g for row in rows for g in row["groups"]) == ["Contractors", "Engineering"]


# -------------------------------------------------------------------- seat totals


def test_seat_totals_count_each_active_user_once(
    service: ProvisioningService,
    session: Session,
    org: Organization,
    runner: FlaskCliRunner,
    api: Any,
) -> None:
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))
    engineering = service.create_group(GroupSpec("Engineering"))
    visitors = service.create_group(GroupSpec("Visitors"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Visitors", "client"))
    bob, carol, erin, frank, gina, henry = (
        service.create_user(UserSpec(f"{n}@acme.example"))
        for n in ("bob", "carol", "erin", "frank", "gina", "henry")
    )
    join(service, engineering, bob)  # the one paid seat
    join(service, engineering, carol)  # waits with no free role: no seat meanwhile
    join(service, visitors, erin)
    join(service, engineering, erin)  # waits on a free seat (client)
    join(service, visitors, frank)  # free
    join(service, visitors, henry)
    service.replace_user(henry.id, UserSpec(henry.user_name, is_active=False))  # not active
    session.commit()
    assert gina.seat == "none" and carol.seat == "none" and erin.seat == "free"
    assert carol.pending_since is not None and erin.pending_since is not None

    totals = service.seat_totals()
    assert (totals.paid, totals.free, totals.pending, totals.none) == (1, 1, 2, 1)
    assert totals.active == 5  # bob, carol, erin, frank, gina
    expected = {"paid": 1, "free": 1, "pending": 2, "none": 1, "active": 5}
    summary = cli_json(runner, "seats", "--org", "acme", "--json")
    assert {key: summary[key] for key in expected} == expected
    served = api("/seats").json
    assert {key: served[key] for key in expected} == expected

    # A dry run moves frank from free to pending: the active users still add up.
    result = service.dry_run(lambda trial: join(trial, engineering, frank))
    after = result.totals_after
    assert (after.paid, after.free, after.pending, after.none) == (1, 0, 3, 1)
    assert after.active == result.totals_before.active == 5


# ------------------------------------------------------------------ seat history


def test_seat_history_stops_at_today(
    service: ProvisioningService,
    session: Session,
    org: Organization,
    runner: FlaskCliRunner,
    api: Any,
) -> None:
    today = datetime.now(UTC).date()
    history = reporting.seat_history(
        session, org, today - timedelta(days=2), today + timedelta(days=5)
    )
    assert [d["date"] for d in history["series"]][-1] == today.isoformat()
    assert len(history["series"]) == 3 and history["end"] == today.isoformat()
    future = (today + timedelta(days=10)).isoformat()
    served = api("/seats/history", end=future).json
    assert served["series"][-1]["date"] == today.isoformat() and len(served["series"]) == 30
    assert api("/seats/history", start=future).status_code == 400
    printed = cli_json(runner, "seats", "history", "--org", "acme", "--end", future, "--json")
    assert printed["series"][-1]["date"] == today.isoformat()


def test_reports_take_today_from_the_service_clock(
    session: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    then = datetime(2026, 2, 10, 12, tzinfo=UTC)
    monkeypatch.setattr(db, "clock", lambda: then)
    history = reporting.seat_history(session, org, date(2026, 2, 1), date(2026, 12, 31))
    assert history["end"] == "2026-02-10" and len(history["series"]) == 10
    org.contract_starts_on = date(2025, 12, 1)
    renewal = reporting.renewal_report(session, org)
    assert renewal["months"][-1]["month"] == "2026-02"
