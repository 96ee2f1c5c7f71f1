"""Access-review reports: access (live and as of a date), changes, renewal and drift, through
the service, the API (streamed, every format) and the CLI."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from app import reporting
from app.errors import NotFoundError
from app.models import ContractVersion, Group, Organization, RoleAssignment, SeatEvent, User
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

ACTOR = Actor(kind="scim", label="okta", request_id="req-7")
CONSOLE = Actor(kind="api", label="console")
Roles = dict[str, str]


@pytest.fixture
def org(organization: tuple[Organization, str]) -> Organization:
    return organization[0]


@pytest.fixture
def service(session: Session, org: Organization) -> ProvisioningService:
    return ProvisioningService(session, org, ACTOR)


def group(service: ProvisioningService, name: str) -> Group:
    return service.create_group(GroupSpec(display_name=name))


def join(service: ProvisioningService, target: Group, user: User) -> None:
    spec = GroupSpec(target.display_name, target.external_id)
    service.update_group(target.id, spec, MemberChange(added=[str(user.id)]))


def leave(service: ProvisioningService, target: Group, user: User) -> None:
    spec = GroupSpec(target.display_name, target.external_id)
    service.update_group(target.id, spec, MemberChange(removed=[str(user.id)]))


def set_active(service: ProvisioningService, user: User, active: bool) -> None:
    service.replace_user(user.id, UserSpec(user_name=user.user_name, is_active=active))


def tick(session: Session) -> datetime:
    """Commit, and take an instant strictly between what came before and what comes after."""
    session.commit()
    time.sleep(0.002)
    instant = datetime.now(UTC)
    time.sleep(0.002)
    return instant


def report(
    service: ProvisioningService, as_of: datetime | None = None, **filters: Any
) -> list[dict[str, Any]]:
    return list(
        reporting.access_report(
            service.session,
            service.organization,
            service.catalogue(),
            AccessFilters(**filters),
            as_of,
        )
    )


def access(rows: Iterable[dict[str, Any]]) -> dict[str, tuple[str, str, Roles]]:
    """userName → (status, seat, {project: role}) from report rows."""
    result: dict[str, tuple[str, str, Roles]] = {}
    for row in rows:
        _, _, roles = result.setdefault(row["userName"], (row["status"], row["seat"], {}))
        if row["project"] is not None:
            roles[row["project"]] = row["role"]
    return result


def names(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {row["userName"].split("@")[0] for row in rows}


# ------------------------------------------------------ as of a past date


@dataclass
class History:
    """Joins, moves and leaves, with an instant after each step."""

    t0: datetime
    t1: datetime
    t2: datetime
    t3: datetime
    engineering: Group
    contractors: Group
    admins: Group


def make_history(service: ProvisioningService) -> History:
    session = service.session
    service.create_project("web", "Website")
    engineering = group(service, "Engineering")
    contractors = group(service, "Contractors")
    admins = group(service, "Admins")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Contractors", "client"))
    service.create_rule(RuleSpec("displayName", "Admins", "project_admin", "web"))
    alice = service.create_user(UserSpec("alice@acme.example"))
    bob = service.create_user(UserSpec("bob@acme.example"))
    t0 = tick(session)
    join(service, engineering, alice)  # alice joins
    join(service, contractors, bob)
    t1 = tick(session)
    leave(service, engineering, alice)  # alice moves to the contractors
    join(service, contractors, alice)
    join(service, admins, bob)  # bob becomes a web admin
    t2 = tick(session)
    set_active(service, alice, False)  # alice leaves
    carol = service.create_user(UserSpec("carol@acme.example"))
    join(service, engineering, carol)  # carol joins
    service.delete_user(bob.id)  # bob is deleted
    t3 = tick(session)
    return History(t0, t1, t2, t3, engineering, contractors, admins)


def test_as_of_report_shows_what_was_live_at_each_moment(
    service: ProvisioningService, session: Session
) -> None:
    history = make_history(service)
    assert access(report(service, history.t0)) == {
        "alice@acme.example": ("active", "none", {}),
        "bob@acme.example": ("active", "none", {}),
    }
    assert access(report(service, history.t1)) == {
        "alice@acme.example": ("active", "paid", {"*": "team_member"}),
        "bob@acme.example": ("active", "free", {"*": "client"}),
    }
    assert access(report(service, history.t2)) == {
        "alice@acme.example": ("active", "free", {"*": "client"}),
        "bob@acme.example": ("active", "paid", {"*": "client", "web": "project_admin"}),
    }
    live = access(report(service))
    assert live == {
        "alice@acme.example": ("deactivated", "none", {}),
        "bob@acme.example": ("deleted", "none", {}),
        "carol@acme.example": ("active", "paid", {"*": "team_member"}),
    }
    assert access(report(service, history.t3)) == live
    assert report(service, history.t0 - timedelta(days=1)) == []


def test_as_of_rows_carry_the_groups_and_rules_that_granted_them(
    service: ProvisioningService,
) -> None:
    history = make_history(service)
    [web] = report(service, history.t2, project="web", role="project_admin")
    assert web["userName"] == "bob@acme.example" and web["paid"] is True
    assert web["groups"] == ["Admins"]
    assert web["rules"] == ["displayName Admins → project_admin in web"]
    granted = datetime.fromisoformat(web["granted_at"])
    assert history.t1 < granted < history.t2
    live = {(r["userName"], r["project"]): r for r in report(service)}
    replayed = {(r["userName"], r["project"]): r for r in report(service, history.t3)}
    assert live.keys() == replayed.keys()
    for key, row in live.items():
        for column in ("status", "seat", "role", "paid", "groups", "rules", "source"):
            assert replayed[key][column] == row[column], (key, column)


def test_as_of_group_filter_uses_the_memberships_of_that_moment(
    service: ProvisioningService,
) -> None:
    history = make_history(service)
    assert names(report(service, history.t1, group="Engineering")) == {"alice"}
    assert names(report(service, history.t2, group="engineering")) == set()
    assert names(report(service, history.t2, group=str(history.contractors.id))) == {
        "alice",
        "bob",
    }
    assert names(report(service, history.t3, group="Engineering")) == {"carol"}
    service.update_group(history.engineering.id, GroupSpec("Platform"))
    later = tick(service.session)
    assert names(report(service, later, group="Engineering")) == {"carol"}  # its name then
    assert names(report(service, group="Platform")) == {"carol"}
    with pytest.raises(NotFoundError):
        report(service, group="Engineering")  # no group is called that now
    # A deleted user leaves their groups without membership events of their own; a
    # deactivated one stays a member.
    assert names(report(service, history.t3, group="Contractors")) == {"alice"}
    assert names(report(service, group="Contractors")) == {"alice"}


# ---------------------------------------------------- access report filters


@dataclass
class Directory:
    alice: User  # Engineering: team member everywhere, paid, logged in yesterday
    bob: User  # Contractors and Admins: client everywhere, web admin, paid, last login 90 days ago
    carol: User  # Contractors: client, free
    dave: User  # deactivated
    erin: User  # deleted
    frank: User  # in no group: no role
    gina: User  # Engineering, but the tier is full: pending
    engineering: Group


def make_directory(service: ProvisioningService) -> Directory:
    session = service.session
    service.create_project("web", "Website")
    engineering = group(service, "Engineering")
    contractors = group(service, "Contractors")
    admins = group(service, "Admins")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Contractors", "client"))
    service.create_rule(RuleSpec("displayName", "Admins", "project_admin", "web"))
    users = {
        name: service.create_user(UserSpec(f"{name}@acme.example"))
        for name in ("alice", "bob", "carol", "dave", "erin", "frank", "gina")
    }
    join(service, engineering, users["alice"])
    join(service, contractors, users["bob"])
    join(service, admins, users["bob"])
    join(service, contractors, users["carol"])
    join(service, engineering, users["dave"])
    set_active(service, users["dave"], False)
    service.delete_user(users["erin"].id)
    service.set_contract(ContractSpec(paid_seat_tier=2, policy="hold"))
    join(service, engineering, users["gina"])
    now = datetime.now(UTC)
    users["alice"].last_login_at = now - timedelta(days=1)  # as SSO logins record it
    users["bob"].last_login_at = now - timedelta(days=90)
    session.commit()
    return Directory(engineering=engineering, **users)


def test_access_report_lists_everyone_with_status_seat_and_roles(
    service: ProvisioningService,
) -> None:
    make_directory(service)
    assert access(report(service)) == {
        "alice@acme.example": ("active", "paid", {"*": "team_member"}),
        "bob@acme.example": ("active", "paid", {"*": "client", "web": "project_admin"}),
        "carol@acme.example": ("active", "free", {"*": "client"}),
        "dave@acme.example": ("deactivated", "none", {}),
        "erin@acme.example": ("deleted", "none", {}),
        "frank@acme.example": ("active", "none", {}),
        "gina@acme.example": ("active", "pending", {}),
    }
    rows = report(service)
    assert [r["userName"] for r in rows] == sorted(r["userName"] for r in rows)
    [alice] = [r for r in rows if r["userName"] == "alice@acme.example"]
    assert alice["groups"] == ["Engineering"]
    assert alice["rules"] == ["displayName Engineering → team_member in *"]
    assert alice["source"] == "scim" and alice["last_login_at"] is not None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"project": "web"}, {"alice", "bob", "carol"}),
        ({"role": "client"}, {"bob", "carol"}),
        ({"project": "web", "role": "project_admin"}, {"bob"}),
        # bob's role in web is project_admin, not the client role he has everywhere else
        ({"project": "web", "role": "client"}, {"carol"}),
        ({"project": "api"}, {"alice", "bob", "carol"}),
        ({"seat": "paid"}, {"alice", "bob"}),
        ({"seat": "free"}, {"carol"}),
        ({"seat": "pending"}, {"gina"}),
        ({"seat": "none"}, {"dave", "erin", "frank", "gina"}),
        ({"status": "active"}, {"alice", "bob", "carol", "frank", "gina"}),
        ({"status": "deactivated"}, {"dave"}),
        ({"status": "deleted"}, {"erin"}),
        ({"group": "ENGINEERING"}, {"alice", "dave", "gina"}),
        ({"group": "Engineering", "seat": "paid"}, {"alice"}),
        ({"not_logged_in_days": 30}, {"bob"}),
        ({"not_logged_in_days": 0}, {"alice", "bob"}),
        ({"deactivated_with_role": True}, set()),
    ],
)
def test_each_access_filter(
    service: ProvisioningService, filters: dict[str, Any], expected: set[str]
) -> None:
    make_directory(service)
    assert names(report(service, **filters)) == expected


def test_project_and_role_filters_show_only_matching_rows(service: ProvisioningService) -> None:
    make_directory(service)
    rows = report(service, project="web")
    assert {(r["userName"].split("@")[0], r["project"], r["role"]) for r in rows} == {
        ("alice", "*", "team_member"),
        ("bob", "web", "project_admin"),
        ("carol", "*", "client"),
    }
    assert all(r["project"] is not None for r in report(service, role="client"))


def test_group_filter_by_id(service: ProvisioningService) -> None:
    directory = make_directory(service)
    by_id = report(service, group=str(directory.engineering.id))
    assert names(by_id) == {"alice", "dave", "gina"}


def test_deactivated_with_role_is_empty_until_the_data_is_inconsistent(
    service: ProvisioningService, session: Session
) -> None:
    directory = make_directory(service)
    assert report(service, deactivated_with_role=True) == []
    # What the provisioning service never allows: deactivated, roles kept.
    session.execute(update(User).where(User.id == directory.alice.id).values(is_active=False))
    session.commit()
    [row] = report(service, deactivated_with_role=True)
    assert (row["userName"], row["status"], row["role"]) == (
        "alice@acme.example",
        "deactivated",
        "team_member",
    )


# ----------------------------------------------------------- change report


def test_change_report_within_period_bounds_with_actor_and_reason(
    service: ProvisioningService, session: Session
) -> None:
    service.create_project("web", "Website")
    engineering = group(service, "Engineering")
    contractors = group(service, "Contractors")
    rule = service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Contractors", "client"))
    alice = service.create_user(UserSpec("alice@acme.example"))
    carol = service.create_user(UserSpec("carol@acme.example"))
    t0 = tick(session)
    join(service, engineering, alice)
    t1 = tick(session)
    service.update_rule(rule.id, RuleSpec("displayName", "Engineering", "project_admin"))
    join(service, contractors, carol)
    t2 = tick(session)
    console = ProvisioningService(session, service.organization, CONSOLE)
    console.update_group(engineering.id, GroupSpec("Engineering"), MemberChange(replaced=[]))
    t3 = tick(session)

    def changes(start: datetime, end: datetime) -> list[tuple[Any, ...]]:
        rows = reporting.change_report(session, service.organization, start, end)
        return [
            (
                r["userName"].split("@")[0],
                r["change"],
                r["project"],
                r["role_before"],
                r["role_after"],
                r["seat_before"],
                r["seat_after"],
                r["reason"],
                f"{r['actor_type']}:{r['actor']}",
            )
            for r in rows
        ]

    okta = "scim:okta"
    assert changes(t0, t1) == [
        ("alice", "granted", "*", None, "team_member", None, None, "membership_changed", okta),
        ("alice", "seat_gained", None, None, None, "none", "paid", "membership_changed", okta),
    ]
    assert changes(t1, t2) == [
        ("alice", "changed", "*", "team_member", "project_admin", None, None, "rule_changed", okta),
        ("carol", "granted", "*", None, "client", None, None, "membership_changed", okta),
        ("carol", "seat_changed", None, None, None, "none", "free", "membership_changed", okta),
    ]
    assert changes(t2, t3) == [
        ("alice", "revoked", "*", "project_admin", None, None, None, "membership_changed",
         "api:console"),
        ("alice", "seat_released", None, None, None, "paid", "none", "membership_changed",
         "api:console"),
    ]  # fmt: skip
    assert len(changes(t0, t3)) == 7
    # since is inclusive, until exclusive, to the microsecond
    first = next(reporting.change_report(session, service.organization, t0, t3))
    at = datetime.fromisoformat(first["at"])
    assert len(changes(at, t3)) == 7
    # The grant and the seat it brought are one change, recorded at one instant.
    assert len(changes(at + timedelta(microseconds=1), t3)) == 5
    assert changes(t0, at) == []


# ---------------------------------------------------------- renewal report


def month_start(day: date, back: int) -> date:
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def test_renewal_report_by_month_peak_current_reclaim_and_forecast(
    service: ProvisioningService, session: Session
) -> None:
    now = datetime.now(UTC)
    start = month_start(now.date(), 2)
    service.set_contract(
        ContractSpec(10, "allow", "annual", start, start.replace(year=start.year + 1))
    )
    # Both versions (the organization's first contract, then tier 10) as if set long ago.
    opened = datetime.combine(start, datetime.min.time(), UTC)
    for tier, days in ((100, 60), (10, 30)):
        session.execute(
            update(ContractVersion)
            .where(ContractVersion.org_id == service.org_id, ContractVersion.paid_seat_tier == tier)
            .values(effective_at=opened - timedelta(days=days))
        )
    users = [service.create_user(UserSpec(f"u{i}@acme.example")) for i in range(6)]
    session.commit()

    def ledger(user: User, at: datetime, before: str, after: str) -> None:
        session.add(
            SeatEvent(
                org_id=service.org_id,
                user_id=user.id,
                from_seat=before,
                to_seat=after,
                reason="test",
                cause="test",
                at=at,
            )
        )

    def day(back: int, number: int) -> datetime:
        return datetime.combine(month_start(now.date(), back), datetime.min.time(), UTC) + (
            timedelta(days=number - 1, hours=12)
        )

    ledger(users[0], day(3, 10), "none", "paid")  # before the contract: the opening balance
    ledger(users[1], day(2, 5), "none", "paid")
    ledger(users[2], day(1, 3), "none", "paid")
    ledger(users[3], day(1, 4), "none", "paid")
    ledger(users[3], day(1, 9), "paid", "none")
    ledger(users[4], day(1, 10), "none", "free")
    ledger(users[5], now, "none", "paid")
    # The users' seats as they stand now, as the service would have left them.
    for user, seat in zip(users, ["paid", "paid", "paid", "none", "free", "paid"], strict=True):
        user.seat = seat
    users[4].pending_since = now
    users[0].last_login_at = now - timedelta(days=2)
    users[1].last_login_at = now - timedelta(days=45)
    session.commit()

    result = reporting.renewal_report(session, service.organization, reclaim_days=30, grace_days=0)
    assert [(m["peak_paid"], m["end_paid"], m["end_free"]) for m in result["months"]] == [
        (2, 2, 0),
        (4, 3, 1),
        (4, 4, 1),
    ]
    assert [m["month"] for m in result["months"]] == [
        month_start(now.date(), back).isoformat()[:7] for back in (2, 1, 0)
    ]
    assert result["months"][1]["utilisation"] == 0.4 and result["tier"] == 10
    assert result["peak_paid"] == 4
    # u3 is active with no role; u4 waits for a paid seat on a free one (pending, not free).
    assert result["current"] == {"paid": 4, "free": 0, "pending": 1, "none": 1}
    # u1 (45 days), u2 and u5 (never), with no grace for users provisioned just now
    assert result["reclaim_candidates"] == 3
    # end of month 2, 3, 4 paid: slope 1 a month, read 12 months after the first
    assert result["forecast_paid_at_renewal"] == 14
    assert result["contract_start"] == start.isoformat()


def test_renewal_report_without_contract_dates_covers_the_last_year(
    service: ProvisioningService, session: Session
) -> None:
    session.commit()
    result = reporting.renewal_report(session, service.organization)
    assert len(result["months"]) == 13 and result["peak_paid"] == 0
    assert result["forecast_paid_at_renewal"] == 0


# ------------------------------------------------------------ drift report


def make_drift(service: ProvisioningService, session: Session) -> dict[str, User]:
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Ghosts", "client"))
    service.create_rule(RuleSpec("externalId", "gone-123", "view_only"))
    alice = service.create_user(UserSpec("alice@acme.example"))
    bob = service.create_user(UserSpec("bob@acme.example"))
    carol = service.create_user(UserSpec("carol@acme.example"))
    join(service, engineering, alice)
    join(service, engineering, bob)
    service.set_contract(ContractSpec(paid_seat_tier=2, policy="hold"))
    join(service, engineering, carol)  # waits for a paid seat
    # Changed behind the service's back.
    session.execute(
        update(RoleAssignment)
        .where(RoleAssignment.user_id == bob.id)
        .values(role_key="comment_only")
    )
    session.commit()
    return {"alice": alice, "bob": bob, "carol": carol}


def test_drift_report_finds_users_and_rules_that_lost_their_group(
    service: ProvisioningService, session: Session
) -> None:
    make_drift(service, session)
    missing = reporting.missing_rule_groups(session, service.organization)
    assert sorted((m["match"], m["group"]) for m in missing) == [
        ("displayName", "Ghosts"),
        ("externalId", "gone-123"),
    ]
    drift = {d["userName"]: d for d in service.drift()}
    assert set(drift) == {"bob@acme.example", "carol@acme.example"}
    bob = drift["bob@acme.example"]
    assert (bob["current"], bob["expected"]) == ({"*": "comment_only"}, {"*": "team_member"})
    assert bob["explanation"] == "roles differ from the current rules"
    assert drift["carol@acme.example"]["explanation"].startswith("pending a paid seat")


# ------------------------------------------------------------------ API


@dataclass
class Api:
    client: FlaskClient
    token: str

    def get(self, path: str, **params: Any) -> TestResponse:
        return self.client.get(
            "/api/v1" + path,
            query_string={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def stream(self, path: str, **params: Any) -> str:
        """A streamed body: 200, no Content-Length, read as it comes."""
        response = self.get(path, **params)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.is_streamed and "Content-Length" not in response.headers
        return response.get_data(as_text=True)

    def rows(self, path: str, format_: str, **params: Any) -> list[dict[str, Any]]:
        body = self.stream(path, format=format_, **params)
        if format_ == "csv":
            return list(csv.DictReader(io.StringIO(body)))
        if format_ == "jsonl":
            return [json.loads(line) for line in body.splitlines()]
        document: dict[str, Any] = json.loads(body)
        rows: list[dict[str, Any]] = document["rows"]
        return rows


def assert_error(response: TestResponse, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    detail: str = (response.json or {})["error"]["detail"]
    return detail


@pytest.fixture
def api(client: FlaskClient, session: Session, org: Organization) -> Api:
    return Api(client, admin_token(session, org))


def from_csv(row: dict[str, str]) -> dict[str, Any]:
    """An access row read back from CSV, typed as in JSON."""

    def names(cell: str) -> list[str]:
        return cell.split("; ") if cell else []

    return {
        **{k: (v or None) for k, v in row.items()},
        "paid": row["paid"] == "true",
        "groups": names(row["groups"]),
        "rules": names(row["rules"]),
    }


@pytest.mark.parametrize("format_", ["json", "jsonl", "csv"])
def test_access_report_api_streams_every_format_and_parses_back(
    api: Api, service: ProvisioningService, format_: str
) -> None:
    make_directory(service)
    rows = api.rows("/reports/access", format_)
    if format_ == "csv":
        rows = [from_csv(row) for row in rows]
        assert list(rows[0]) == list(reporting.ACCESS_COLUMNS)
    expected = report(service)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert {k: got[k] for k in reporting.ACCESS_COLUMNS} == want


def test_access_report_api_json_document(api: Api, service: ProvisioningService) -> None:
    make_directory(service)
    document = json.loads(api.stream("/reports/access"))
    assert set(document) == {"as_of", "rows"}
    assert datetime.fromisoformat(document["as_of"]) <= datetime.now(UTC)
    day = json.loads(api.stream("/reports/access", as_of="2000-01-01"))
    assert day == {"as_of": "2000-01-01T23:59:59.999999+00:00", "rows": []}


def test_access_report_api_filters(
    api: Api, service: ProvisioningService, session: Session
) -> None:
    directory = make_directory(service)

    def found(**params: Any) -> set[str]:
        return names(api.rows("/reports/access", "jsonl", **params))

    assert found(project="web", role="Project Administrator") == {"bob"}
    assert found(role="client") == {"bob", "carol"}
    assert found(seat="pending") == {"gina"}
    assert found(status="deleted") == {"erin"}
    assert found(group="Engineering") == found(group=str(directory.engineering.id))
    assert found(not_logged_in_days="30") == {"bob"}
    assert found(deactivated_with_role="true") == set()
    session.execute(update(User).where(User.id == directory.bob.id).values(is_active=False))
    session.commit()
    assert found(deactivated_with_role="true") == {"bob"}
    assert found(deactivated_with_role="false", status="deactivated") == {"bob", "dave"}


def test_access_report_api_as_of(api: Api, service: ProvisioningService, session: Session) -> None:
    history = make_history(service)
    rows = api.rows("/reports/access", "json", as_of=history.t1.isoformat())
    assert access(rows) == {
        "alice@acme.example": ("active", "paid", {"*": "team_member"}),
        "bob@acme.example": ("active", "free", {"*": "client"}),
    }
    today = datetime.now(UTC).date().isoformat()
    rows = [from_csv(row) for row in api.rows("/reports/access", "csv", as_of=today)]
    assert access(rows) == access(report(service))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"format": "xml"}, 400),
        ({"seat": "gold"}, 400),
        ({"status": "gone"}, 400),
        ({"as_of": "last tuesday"}, 400),
        ({"not_logged_in_days": "-1"}, 400),
        ({"deactivated_with_role": "maybe"}, 400),
        ({"role": "Overlord"}, 400),
        ({"group": "Nobody"}, 404),
    ],
)
def test_access_report_api_refuses_bad_parameters_before_streaming(
    api: Api, service: ProvisioningService, params: dict[str, str], status: int
) -> None:
    make_directory(service)
    assert_error(api.get("/reports/access", **params), status)


def test_reports_need_an_admin_token(
    client: FlaskClient, organization: tuple[Organization, str]
) -> None:
    for path in ("access", "changes", "renewal", "drift"):
        assert_error(client.get(f"/api/v1/reports/{path}"), 401)
        scim = Api(client, organization[1])
        assert_error(scim.get(f"/reports/{path}"), 403)


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(
    api: Api, service: ProvisioningService
) -> None:
    sneaky = group(service, '=HYPERLINK("http://evil.example")')
    service.create_rule(RuleSpec("id", str(sneaky.id), "client"))
    user = service.create_user(UserSpec("+1-555@acme.example"))
    join(service, sneaky, user)
    service.session.commit()
    [row] = api.rows("/reports/access", "csv")
    assert row["userName"] == "'+1-555@acme.example"
    assert row["groups"] == '\'=HYPERLINK("http://evil.example")'
    [plain] = api.rows("/reports/access", "jsonl")
    assert plain["groups"] == ['=HYPERLINK("http://evil.example")']


@pytest.mark.parametrize("format_", ["json", "jsonl", "csv"])
def test_change_report_api(
    api: Api, service: ProvisioningService, session: Session, format_: str
) -> None:
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    alice = service.create_user(UserSpec("alice@acme.example"))
    start = tick(session)
    join(service, engineering, alice)
    end = tick(session)
    leave(service, engineering, alice)
    session.commit()
    rows = api.rows("/reports/changes", format_, since=start.isoformat(), until=end.isoformat())
    assert [(r["change"], r["actor"], r["reason"]) for r in rows] == [
        ("granted", "okta", "membership_changed"),
        ("seat_gained", "okta", "membership_changed"),
    ]
    everything = api.rows("/reports/changes", format_)  # the last 30 days
    assert [r["change"] for r in everything] == [
        "granted",
        "seat_gained",
        "revoked",
        "seat_released",
    ]
    today = start.date().isoformat()
    assert len(api.rows("/reports/changes", format_, since=today, until=today)) == 4
    if format_ == "json":
        document = json.loads(api.stream("/reports/changes", since=today, until=today))
        assert set(document) == {"since", "until", "rows"}
    assert_error(api.get("/reports/changes", since=end.isoformat(), until=start.isoformat()), 400)


def test_renewal_report_api(api: Api, service: ProvisioningService, session: Session) -> None:
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    join(service, engineering, service.create_user(UserSpec("alice@acme.example")))
    session.commit()
    response = api.get("/reports/renewal", reclaim_days=7, grace_days=0)
    assert response.status_code == 200
    document = response.json or {}
    assert document["current"] == {"paid": 1, "free": 0, "pending": 0, "none": 0}
    assert document["reclaim_candidates"] == 1 and document["reclaim_after_days"] == 7
    assert document["months"][-1]["end_paid"] == 1 and document["peak_paid"] == 1
    monthly = list(
        csv.DictReader(io.StringIO(api.get("/reports/renewal", format="csv").get_data(True)))
    )
    assert [row["month"] for row in monthly] == [m["month"] for m in document["months"]]
    assert_error(api.get("/reports/renewal", reclaim_days=-3), 400)


@pytest.mark.parametrize("format_", ["json", "jsonl", "csv"])
def test_drift_report_api_has_both_parts(
    api: Api, service: ProvisioningService, session: Session, format_: str
) -> None:
    make_drift(service, session)
    body = api.stream("/reports/drift", format=format_)
    if format_ == "json":
        document = json.loads(body)
        rules = document["missing_rule_groups"]
        users = document["users"]
    else:
        rows = (
            list(csv.DictReader(io.StringIO(body)))
            if format_ == "csv"
            else [json.loads(line) for line in body.splitlines()]
        )
        rules = [r for r in rows if r["kind"] == "missing_rule_group"]
        users = [r for r in rows if r["kind"] == "user"]
    assert sorted(r["group"] for r in rules) == ["Ghosts", "gone-123"]
    assert sorted(u["userName"] for u in users) == ["bob@acme.example", "carol@acme.example"]
    [bob] = [u for u in users if u["userName"] == "bob@acme.example"]
    current = bob["current"] if format_ != "csv" else json.loads(bob["current"])
    assert current == {"*": "comment_only"}


# ------------------------------------------------------------------- CLI


def invoke(runner: FlaskCliRunner, *args: str) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_report_access_to_a_file_in_every_format(
    runner: FlaskCliRunner, service: ProvisioningService, tmp_path: Path
) -> None:
    make_directory(service)
    expected = report(service, seat="paid")
    for format_ in ("csv", "json", "jsonl"):
        target = tmp_path / f"access.{format_}"
        invoke(
            runner,
            *("report", "access", "--org", "acme", "--seat", "paid"),
            *("--format", format_, "--output", str(target)),
        )
        body = target.read_text()
        if format_ == "csv":
            rows = [from_csv(row) for row in csv.DictReader(io.StringIO(body))]
        elif format_ == "jsonl":
            rows = [json.loads(line) for line in body.splitlines()]
        else:
            rows = json.loads(body)["rows"]
        assert rows == expected


def test_cli_report_access_filters_and_as_of(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session
) -> None:
    history = make_history(service)
    out = invoke(
        runner,
        *("report", "access", "--org", "acme", "--format", "jsonl"),
        *("--as-of", history.t2.isoformat(), "--project", "web", "--role", "Project Administrator"),
    )
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (row["userName"], row["role"]) == ("bob@acme.example", "project_admin")
    out = invoke(runner, "report", "access", "--org", "acme", "--status", "deleted")
    assert names(json.loads(out)["rows"]) == {"bob"}
    refused = runner.invoke(args=["report", "access", "--org", "acme", "--group", "Nope"])
    assert refused.exit_code != 0 and "not found" in refused.output
    refused = runner.invoke(args=["report", "access", "--org", "acme", "--as-of", "soon"])
    assert refused.exit_code != 0 and "ISO 8601" in refused.output
    refused = runner.invoke(args=["report", "access", "--org", "nope"])
    assert refused.exit_code != 0 and "no organization" in refused.output


def test_cli_report_changes_renewal_and_drift(
    runner: FlaskCliRunner, service: ProvisioningService, session: Session, tmp_path: Path
) -> None:
    make_drift(service, session)
    today = datetime.now(UTC).date().isoformat()
    out = invoke(
        runner,
        *("report", "changes", "--org", "acme", "--since", today, "--until", today),
        *("--format", "csv"),
    )
    changes = list(csv.DictReader(io.StringIO(out)))
    assert {r["change"] for r in changes} >= {"granted", "seat_gained"}
    renewal = json.loads(invoke(runner, "report", "renewal", "--org", "acme", "--json"))
    assert renewal["current"]["paid"] == 2 and renewal["current"]["pending"] == 1
    text = invoke(runner, "report", "renewal", "--org", "acme")
    assert "forecast paid seats at renewal" in text
    target = tmp_path / "drift.csv"
    invoke(runner, "report", "drift", "--org", "acme", "--format", "csv", "-o", str(target))
    kinds = [r["kind"] for r in csv.DictReader(target.open())]
    assert kinds == ["missing_rule_group", "missing_rule_group", "user", "user"]
    drift = json.loads(invoke(runner, "report", "drift", "--org", "acme"))
    assert len(drift["missing_rule_groups"]) == 2 and len(drift["users"]) == 2
