"""A quarter of a customer's life, played on a faked clock: tier changes, a held and discarded
rule, a mass grant split into small changes, an IdP rename, departures and returns. The seat
counts, the renewal report per month and the access report as of several instants are checked
against a model the test keeps itself, never against what the service reports elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db, provisioning, reporting
from app.models import Group, HeldChange, Organization, OveragePolicy, User
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

ACTOR = Actor(kind="system", label="quarter")


class Clock:
    """The time the service reads (app.db.clock), moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def at(self, year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> None:
        moment = datetime(year, month, day, hour, minute, tzinfo=UTC)
        assert moment >= self.now, "the story only moves forward"
        self.now = moment


@dataclass
class Model:
    """What the test expects: each user's status, role and seat, the tier, and every
    moment's paid count (for the monthly peaks and overage)."""

    tier: int = 5
    users: dict[str, tuple[str, str | None, str]] = field(default_factory=dict)
    paid_timeline: list[tuple[datetime, int, int]] = field(default_factory=list)

    def set(self, name: str, status: str, role: str | None, seat: str) -> None:
        self.users[name] = (status, role, seat)

    def count(self, seat: str) -> int:
        return sum(1 for status, _, s in self.users.values() if status == "active" and s == seat)

    def note(self, at: datetime) -> None:
        self.paid_timeline.append((at, self.count("paid"), self.tier))

    def month(self, first: date, end: datetime) -> dict[str, int]:
        """Peak paid and the most paid above the tier during the month (the last value before
        the month counts from its first moment)."""
        start = datetime.combine(first, datetime.min.time(), UTC)
        before = [(p, t) for at, p, t in self.paid_timeline if at < start][-1:]
        inside = [(p, t) for at, p, t in self.paid_timeline if start <= at < end]
        points = before + inside
        return {
            "peak_paid": max(p for p, _ in points),
            "overage": max(max(p - t, 0) for p, t in points),
        }


@dataclass
class Story:
    session: Session
    organization: Organization
    clock: Clock
    model: Model
    groups: dict[str, Group] = field(default_factory=dict)
    people: dict[str, User] = field(default_factory=dict)

    def request(self) -> ProvisioningService:
        """A service for the next request, the previous one committed (its audit events
        sealed in the chain), as each of the IdP's or the admin's requests is."""
        self.session.commit()
        return ProvisioningService(self.session, self.organization, ACTOR)

    def user(self, name: str) -> User:
        self.people[name] = self.request().create_user(UserSpec(f"{name}@acme.example"))
        return self.people[name]

    def join(self, group: str, name: str) -> None:
        row = self.groups[group]
        member = MemberChange(added=[str(self.people[name].id)])
        self.request().update_group(row.id, GroupSpec(row.display_name), member)

    def held(self) -> list[HeldChange]:
        query = select(HeldChange).where(
            HeldChange.org_id == self.organization.id, HeldChange.status == "held"
        )
        return list(self.session.scalars(query))

    def check_seats(self) -> None:
        totals = reporting.seat_totals(self.session, self.organization.id)
        expected = {s: self.model.count(s) for s in ("paid", "free", "pending", "none")}
        assert (totals.paid, totals.free, totals.pending, totals.none) == (
            expected["paid"],
            expected["free"],
            expected["pending"],
            expected["none"],
        )
        self.model.note(self.clock.now)

    def access_as_of(self, moment: datetime) -> dict[str, tuple[str, str | None, list[str]]]:
        rows = reporting.access_report(
            self.session,
            self.organization,
            ProvisioningService(self.session, self.organization, ACTOR).catalogue(),
            AccessFilters(),
            as_of=moment,
        )
        return {
            str(r["userName"]).split("@")[0]: (r["status"], r["role"], sorted(r["groups"]))
            for r in rows
        }


@pytest.fixture
def story(session: Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[Story]:
    clock = Clock(datetime(2026, 1, 2, 9, 0, tzinfo=UTC))
    monkeypatch.setattr(db, "clock", clock)
    org = provisioning.create_organization(
        session, "Acme", "acme", paid_seats=5, policy=OveragePolicy.HOLD
    )
    service = ProvisioningService(session, org, ACTOR)
    service.set_contract(ContractSpec(5, "hold", "annual", date(2026, 1, 1), date(2026, 12, 31)))
    # Up to ten new paid seats per request, but no more than four within an hour.
    service.set_guard_thresholds(10, 1.0, 10, window_minutes=60, max_new_paid_seats_in_window=4)
    yield Story(session, org, clock, Model())


def test_a_quarter_of_a_customers_life(story: Story) -> None:
    clock, model = story.clock, story.model
    for name in ("Engineering", "Support"):
        story.groups[name] = story.request().create_group(GroupSpec(name))
    story.request().create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    story.request().create_rule(RuleSpec("displayName", "Support", "client"))
    story.check_seats()

    # January 5: the IdP adds six engineers one request at a time. Four paid seats within
    # the hour pass the window; the fifth and sixth are held, however they are split up.
    for minute, name in enumerate(("u1", "u2", "u3", "u4", "u5", "u6")):
        clock.at(2026, 1, 5, 9, 2 * minute)
        story.user(name)
        story.join("Engineering", name)
        paid = minute < 4
        model.set(name, "active", "team_member" if paid else None, "paid" if paid else "none")
        story.check_seats()
    assert story.held(), "the split-up mass grant is held"
    assert {str(story.people[n].id) for h in story.held() for n in ("u5", "u6")} <= {
        u for h in story.held() for u in h.user_ids
    }

    # 09:30: the admin confirms. The tier (5, hold) has one paid seat left: the user recomputed
    # first (by id) takes it, the other waits for a paid seat with no free role to fall to.
    clock.at(2026, 1, 5, 9, 30)
    for held in story.held():
        story.request().confirm_held(held.id)
    first, second = sorted(("u5", "u6"), key=lambda n: story.people[n].id.int)
    model.set(first, "active", "team_member", "paid")
    model.set(second, "active", None, "pending")
    story.check_seats()

    # January 6: two support agents, on a free role.
    clock.at(2026, 1, 6)
    for name in ("u7", "u8"):
        story.user(name)
        story.join("Support", name)
        model.set(name, "active", "client", "free")
    story.check_seats()

    # January 20: a larger tier promotes the waiting engineer.
    clock.at(2026, 1, 20)
    story.request().set_contract(
        ContractSpec(6, "hold", "annual", date(2026, 1, 1), date(2026, 12, 31))
    )
    model.tier = 6
    model.set(second, "active", "team_member", "paid")
    story.check_seats()

    # February 3: the IdP renames Engineering. Nothing but the name changes.
    clock.at(2026, 2, 3)
    story.request().update_group(story.groups["Engineering"].id, GroupSpec("Platform Engineering"))
    assert not story.held()
    story.check_seats()

    # February 10: a rule making support agents Team Members would grant two paid seats at
    # once (the per-request limit is now one): it is staged, not in force.
    clock.at(2026, 2, 10)
    story.request().set_guard_thresholds(1, 1.0, 10)
    staged = story.request().create_rule(RuleSpec("displayName", "Support", "team_member"))
    assert isinstance(staged, HeldChange) and staged.status == "held"
    clock.at(2026, 2, 11)
    story.user("u9")
    story.join("Support", "u9")
    model.set("u9", "active", "client", "free")
    story.check_seats()
    clock.at(2026, 2, 12)
    story.request().discard_held(staged.id)
    story.check_seats()

    # February 15 and 20: one engineer leaves (deactivated), another is deleted.
    clock.at(2026, 2, 15)
    u2 = story.people["u2"]
    story.request().replace_user(u2.id, UserSpec(u2.user_name, is_active=False))
    model.set("u2", "deactivated", None, "none")
    story.check_seats()
    clock.at(2026, 2, 20)
    story.request().delete_user(story.people["u3"].id)
    model.set("u3", "deleted", None, "none")
    story.check_seats()

    # March 2: the first one comes back.
    clock.at(2026, 3, 2)
    story.request().replace_user(u2.id, UserSpec(u2.user_name, is_active=True))
    model.set("u2", "active", "team_member", "paid")
    story.check_seats()

    # March 10: renewal talks lower the tier to 4 under `allow`: nobody is demoted, the
    # five paid seats are one over. March 15: a new hire takes it to two over.
    clock.at(2026, 3, 10)
    story.request().set_contract(
        ContractSpec(4, "allow", "annual", date(2026, 1, 1), date(2026, 12, 31))
    )
    model.tier = 4
    story.check_seats()
    clock.at(2026, 3, 15)
    story.user("u10")
    story.join("Engineering", "u10")
    model.set("u10", "active", "team_member", "paid")
    story.check_seats()

    clock.at(2026, 4, 1, 10)
    check_renewal(story)
    check_access_as_of(story, first, second)


def check_renewal(story: Story) -> None:
    report = reporting.renewal_report(story.session, story.organization, grace_days=0)
    months = {row["month"]: row for row in report["months"]}
    assert list(months) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    ends = {
        "2026-01": (datetime(2026, 2, 1, tzinfo=UTC), 6, "hold", 2, 0),
        "2026-02": (datetime(2026, 3, 1, tzinfo=UTC), 6, "hold", 3, 0),
        "2026-03": (datetime(2026, 4, 1, tzinfo=UTC), 4, "allow", 3, 0),
        "2026-04": (story.clock.now, 4, "allow", 3, 0),
    }
    end_paid = {"2026-01": 6, "2026-02": 4, "2026-03": 6, "2026-04": 6}
    for month, (end, tier, policy, free, pending) in ends.items():
        expected = story.model.month(date.fromisoformat(f"{month}-01"), end)
        row = months[month]
        assert (row["tier"], row["policy"]) == (tier, policy), month
        assert (row["peak_paid"], row["overage"]) == (
            expected["peak_paid"],
            expected["overage"],
        ), month
        assert (row["end_paid"], row["end_free"], row["end_pending"]) == (
            end_paid[month],
            free,
            pending,
        ), month
    # The story's numbers, spelled out once: January peaks at 6, March runs two over 4.
    assert [months[m]["peak_paid"] for m in months] == [6, 6, 6, 6]
    assert [months[m]["overage"] for m in months] == [0, 0, 2, 2]
    assert report["current"] == {"paid": 6, "free": 3, "pending": 0, "none": 0}


def check_access_as_of(story: Story, first: str, second: str) -> None:
    end_of_january = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
    january = story.access_as_of(end_of_january)
    engineers = {f"u{i}": ("active", "team_member", ["Engineering"]) for i in range(1, 7)}
    assert january == engineers | {
        "u7": ("active", "client", ["Support"]),
        "u8": ("active", "client", ["Support"]),
    }
    # Before the promotion, the waiting engineer had no role.
    on_the_tenth = story.access_as_of(datetime(2026, 1, 10, tzinfo=UTC))
    assert on_the_tenth[second] == ("active", None, [])
    assert on_the_tenth[first] == ("active", "team_member", ["Engineering"])
    # While the Support rule was held, the newcomer got the free role only.
    held = story.access_as_of(datetime(2026, 2, 11, 12, tzinfo=UTC))
    assert held["u9"] == ("active", "client", ["Support"])
    # End of February: the rename is in the group's name; the leavers hold nothing.
    february = story.access_as_of(datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    platform = ("active", "team_member", ["Platform Engineering"])
    assert {n: february[n] for n in ("u1", "u4", "u5", "u6")} == dict.fromkeys(
        ("u1", "u4", "u5", "u6"), platform
    )
    assert february["u2"] == ("deactivated", None, [])
    assert february["u3"] == ("deleted", None, [])
    assert {n: february[n] for n in ("u7", "u8", "u9")} == dict.fromkeys(
        ("u7", "u8", "u9"), ("active", "client", ["Support"])
    )
    assert "u10" not in february
    # Now: the returnee and the new hire are engineers again.
    now = story.access_as_of(story.clock.now + timedelta(minutes=1))
    assert now["u2"] == platform and now["u10"] == platform
