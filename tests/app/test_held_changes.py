"""The mass-grant guard (issue #13, items 1, 2 and 6): a held rule, rule edit or default role is
staged and not in force until confirmed, a discard sticks; the guard counts new paid seats per
request and over a sliding window; a dry run counts only what would really be applied."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db, provisioning
from app.db import utcnow
from app.errors import ConflictError, InvalidChangeError
from app.models import (
    AuditEvent,
    HeldChange,
    MappingRule,
    Membership,
    Organization,
    RoleAssignment,
    SeatEvent,
    User,
)
from app.provisioning import (
    Actor,
    GroupSpec,
    MemberChange,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)

ACTOR = Actor(kind="scim", label="okta")
ADMIN = Actor(kind="api", label="admin")


@pytest.fixture
def org(session: Session) -> Iterator[Organization]:
    organization = provisioning.create_organization(session, "Acme", "acme-held", paid_seats=100)
    # Two new paid seats per change at most: three is a mass grant.
    request(session, organization, ADMIN).set_guard_thresholds(
        max_new_paid_seats=2, max_new_paid_share=1.0, max_new_project_admins=10
    )
    yield organization


def request(session: Session, org: Organization, actor: Actor = ACTOR) -> ProvisioningService:
    """A service for one request: the guard counts per request, so each gets its own."""
    return ProvisioningService(session, org, actor)


def people(session: Session, org: Organization, group: str, count: int) -> tuple[str, list[User]]:
    service = request(session, org)
    users = [service.create_user(UserSpec(user_name=f"{group}{n}@x.example")) for n in range(count)]
    created = service.create_group(GroupSpec(group, member_ids=[str(u.id) for u in users]))
    return str(created.id), users


def join(session: Session, org: Organization, group_id: str, *users: User) -> None:
    service = request(session, org)
    current = service.get_group(group_id)
    spec = GroupSpec(current.display_name, current.external_id)
    service.update_group(group_id, spec, MemberChange(added=[str(u.id) for u in users]))


def roles_of(session: Session, user: User) -> dict[str, str]:
    rows = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id))
    return {r.project_key: r.role_key for r in rows}


def rules(session: Session, org: Organization) -> list[tuple[str, str]]:
    rows = session.scalars(select(MappingRule).where(MappingRule.org_id == org.id))
    return [(r.group_value, r.role_key) for r in rows]


def audit(session: Session, org: Organization, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.org_id == org.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def new_user(session: Session, org: Organization, name: str) -> User:
    return request(session, org).create_user(UserSpec(user_name=f"{name}@x.example"))


# ------------------------------------------------- 1. held changes are staged


def test_a_held_rule_is_not_in_force_until_confirmed(session: Session, org: Organization) -> None:
    everyone, users = people(session, org, "everyone", 3)
    held = request(session, org, ADMIN).create_rule(
        RuleSpec("displayName", "Everyone", "team_member")
    )
    assert isinstance(held, HeldChange)
    assert (held.kind, held.status, held.new_paid_seats) == ("rule_create", "held", 3)
    assert held.payload["rule"]["group"] == "Everyone"
    assert rules(session, org) == []
    # Neither a new member nor a reactivation grants through a rule that is not in force.
    late = new_user(session, org, "late")
    join(session, org, everyone, late)
    back = users[0]
    request(session, org).replace_user(back.id, UserSpec(back.user_name, is_active=False))
    request(session, org).replace_user(back.id, UserSpec(back.user_name, is_active=True))
    assert all(roles_of(session, u) == {} for u in [*users, late])
    request(session, org, ADMIN).confirm_held(held.id)
    assert rules(session, org) == [("Everyone", "team_member")]
    assert all(roles_of(session, u) == {"*": "team_member"} for u in [*users, late])
    reasons = session.scalars(select(SeatEvent.reason).where(SeatEvent.to_seat == "paid")).all()
    assert set(reasons) == {"confirmed:rule_created"}
    [confirmed] = audit(session, org, "change.confirmed")
    assert confirmed.after == {
        "status": "confirmed",
        "kind": "rule_create",
        "reason": "rule_created",
    }


def test_a_discarded_rule_never_grants(session: Session, org: Organization) -> None:
    everyone, users = people(session, org, "everyone", 3)
    held = request(session, org, ADMIN).create_rule(
        RuleSpec("displayName", "Everyone", "team_member")
    )
    assert isinstance(held, HeldChange)
    request(session, org, ADMIN).discard_held(held.id)
    late = new_user(session, org, "late")
    join(session, org, everyone, late)
    assert rules(session, org) == []
    assert all(roles_of(session, u) == {} for u in [*users, late])
    [discarded] = audit(session, org, "change.discarded")
    assert discarded.target_id == str(held.id) and discarded.after is not None
    assert discarded.after["kind"] == "rule_create"
    with pytest.raises(ConflictError, match="already discarded"):
        request(session, org, ADMIN).confirm_held(held.id)


def test_a_held_rule_edit_keeps_the_previous_rule_in_force(
    session: Session, org: Organization
) -> None:
    everyone, users = people(session, org, "everyone", 3)
    rule = request(session, org, ADMIN).create_rule(
        RuleSpec("displayName", "Everyone", "view_only")
    )
    assert isinstance(rule, MappingRule)
    upgrade = RuleSpec("displayName", "Everyone", "team_member")
    held = request(session, org, ADMIN).update_rule(rule.id, upgrade)
    assert isinstance(held, HeldChange) and held.kind == "rule_update"
    assert held.payload["rule_id"] == str(rule.id)
    assert held.payload["before"]["role"] == "view_only"
    assert rules(session, org) == [("Everyone", "view_only")]
    late = new_user(session, org, "late")
    join(session, org, everyone, late)
    assert all(roles_of(session, u) == {"*": "view_only"} for u in [*users, late])
    request(session, org, ADMIN).discard_held(held.id)
    assert rules(session, org) == [("Everyone", "view_only")]
    again = request(session, org, ADMIN).update_rule(rule.id, upgrade)
    assert isinstance(again, HeldChange)
    request(session, org, ADMIN).confirm_held(again.id)
    assert rules(session, org) == [("Everyone", "team_member")]
    assert all(roles_of(session, u) == {"*": "team_member"} for u in [*users, late])


def test_a_held_default_role_keeps_the_previous_one(session: Session, org: Organization) -> None:
    users = [new_user(session, org, f"loner{n}") for n in range(3)]
    held = request(session, org, ADMIN).set_default_role("team_member")
    assert isinstance(held, HeldChange) and held.kind == "default_role"
    assert held.payload == {"role": "team_member", "before": None}
    session.refresh(org)
    assert org.default_role_key is None
    late = new_user(session, org, "late")
    assert all(roles_of(session, u) == {} for u in [*users, late])
    request(session, org, ADMIN).confirm_held(held.id)
    assert org.default_role_key == "team_member"
    assert all(roles_of(session, u) == {"*": "team_member"} for u in [*users, late])


def test_confirming_a_change_whose_target_is_gone_refuses_and_stays_held(
    session: Session, org: Organization
) -> None:
    people(session, org, "everyone", 3)
    admin = request(session, org, ADMIN)
    rule = admin.create_rule(RuleSpec("displayName", "Everyone", "view_only"))
    assert isinstance(rule, MappingRule)
    edit = admin.update_rule(rule.id, RuleSpec("displayName", "Everyone", "team_member"))
    admin.create_project("web", "Website")
    lead = admin.create_custom_role("lead", "Lead", 350)
    for_web = admin.create_rule(RuleSpec("displayName", "Everyone", "team_member", "web"))
    for_lead = admin.create_rule(RuleSpec("displayName", "Everyone", lead.key))
    assert all(isinstance(h, HeldChange) for h in (edit, for_web, for_lead))
    # Not in force, so nothing keeps the rule, the project or the role from being deleted.
    admin.delete_rule(rule.id)
    admin.delete_project("web")
    admin.delete_custom_role(lead.key)
    for held, why in (
        (edit, "was deleted"),
        (for_web, "unknown project"),
        (for_lead, "unknown role"),
    ):
        assert isinstance(held, HeldChange)
        with pytest.raises(ConflictError, match=f"cannot be confirmed: .*{why}"):
            request(session, org, ADMIN).confirm_held(held.id)
        assert held.status == "held"
    assert rules(session, org) == []
    assert session.scalars(select(RoleAssignment)).all() == []


def test_a_membership_hold_applies_the_membership_and_says_where_it_came_from(
    session: Session, org: Organization
) -> None:
    request(session, org, ADMIN).create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    everyone, _ = people(session, org, "everyone", 0)
    users = [new_user(session, org, f"m{n}") for n in range(3)]
    join(session, org, everyone, *users)
    [held] = session.scalars(select(HeldChange)).all()
    assert held.kind == "directory" and held.reason == "membership_changed"
    assert held.payload["origin"] == "membership_changed" and held.payload["actor"] == "scim:okta"
    members = session.scalars(
        select(Membership.user_id).where(Membership.group_id == UUID(everyone))
    )
    assert len(members.all()) == 3
    [event] = audit(session, org, "change.held")
    assert event.after is not None
    assert (event.after["kind"], event.after["reason"]) == ("directory", "membership_changed")
    request(session, org, ADMIN).confirm_held(held.id)
    reasons = session.scalars(select(SeatEvent.reason).where(SeatEvent.to_seat == "paid")).all()
    assert set(reasons) == {"confirmed:membership_changed"}


# --------------------------------------------- 2. the guard cannot be split


def paid(session: Session, org: Organization) -> int:
    return len(
        session.scalars(select(User).where(User.org_id == org.id, User.seat == "paid")).all()
    )


def test_one_request_of_many_small_changes_is_guarded_as_one(
    session: Session, org: Organization
) -> None:
    request(session, org, ADMIN).create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    everyone, _ = people(session, org, "everyone", 0)
    users = [new_user(session, org, f"m{n}") for n in range(5)]
    one_request = request(session, org)  # a SCIM /Bulk: one scope for all its operations
    current = one_request.get_group(everyone)
    for user in users:
        spec = GroupSpec(current.display_name, current.external_id)
        one_request.update_group(everyone, spec, MemberChange(added=[str(user.id)]))
    assert paid(session, org) == 2
    [held] = session.scalars(select(HeldChange)).all()
    assert sorted(held.user_ids) == sorted(str(u.id) for u in users[2:])
    assert "3 new paid seats exceed the limit of 2 (2 earlier in this request)" in held.reasons


def test_grants_spread_over_requests_are_held_within_the_window(
    session: Session, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    request(session, org, ADMIN).set_guard_thresholds(
        50, 1.0, 10, window_minutes=10, max_new_paid_seats_in_window=3
    )
    request(session, org, ADMIN).create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    everyone, _ = people(session, org, "everyone", 0)
    users = [new_user(session, org, f"m{n}") for n in range(6)]
    for user in users[:5]:
        join(session, org, everyone, user)  # one request each
    assert paid(session, org) == 3
    # The 4th and 5th are one held change to confirm, not one per request.
    [held] = session.scalars(select(HeldChange)).all()
    assert sorted(held.user_ids) == sorted(str(u.id) for u in users[3:5])
    assert held.reasons[0] == "4 new paid seats within 10 minutes exceed the limit of 3"
    # Revocations are never held, window or not.
    leaver = users[0]
    current = request(session, org).get_group(everyone)
    request(session, org).update_group(
        everyone,
        GroupSpec(current.display_name, current.external_id),
        MemberChange(removed=[str(leaver.id)]),
    )
    assert roles_of(session, leaver) == {}
    # Confirmed grants do not count again; and eleven minutes later the window has slid on.
    request(session, org, ADMIN).confirm_held(held.id)
    later = utcnow() + timedelta(minutes=11)
    monkeypatch.setattr(db, "clock", lambda: later)
    join(session, org, everyone, users[5])
    assert roles_of(session, users[5]) == {"*": "team_member"}
    assert session.scalars(select(HeldChange).where(HeldChange.status == "held")).all() == []


def test_the_window_can_be_turned_off_and_is_validated(session: Session, org: Organization) -> None:
    admin = request(session, org, ADMIN)
    admin.set_guard_thresholds(50, 1.0, 10, window_minutes=0, max_new_paid_seats_in_window=1)
    admin.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    everyone, _ = people(session, org, "everyone", 0)
    for n in range(3):
        join(session, org, everyone, new_user(session, org, f"m{n}"))
    assert paid(session, org) == 3 and session.scalars(select(HeldChange)).all() == []
    for minutes, limit in ((-1, 5), (10, -1), (24 * 60 + 1, 5)):
        with pytest.raises(InvalidChangeError):
            admin.set_guard_thresholds(
                50, 1.0, 10, window_minutes=minutes, max_new_paid_seats_in_window=limit
            )


# --------------------------------------------- 6. dry runs tell the truth


def test_a_dry_run_counts_only_what_would_apply_and_shows_held_grants(
    session: Session, org: Organization
) -> None:
    _, users = people(session, org, "everyone", 3)
    service = request(session, org, ADMIN)
    result = service.dry_run(
        lambda s: s.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    )
    assert result.totals_after == result.totals_before
    assert result.changes == ()
    [held] = result.held
    assert held.user_ids == tuple(sorted(str(u.id) for u in users))
    assert len(held.new_paid_seat_user_ids) == 3 and held.reason == "rule_created"
    assert session.scalars(select(HeldChange)).all() == []


def test_a_dry_run_of_a_membership_hold_applies_only_the_membership(
    session: Session, org: Organization
) -> None:
    request(session, org, ADMIN).create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    everyone, _ = people(session, org, "everyone", 0)
    newcomers = [new_user(session, org, f"m{n}") for n in range(3)]

    def add_them(s: ProvisioningService) -> Any:
        current = s.get_group(everyone)
        spec = GroupSpec(current.display_name, current.external_id)
        return s.update_group(everyone, spec, MemberChange(added=[str(u.id) for u in newcomers]))

    result = request(session, org).dry_run(add_them)
    assert (result.totals_before.paid, result.totals_after.paid) == (0, 0)
    [held] = result.held
    assert held.reason == "membership_changed" and len(held.grants) == 3
