"""Roles and seats following users as they join, move and leave, through the service."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from app import audit, provisioning
from app.db import make_sessions
from app.errors import ConflictError
from app.models import (
    AuditEvent,
    Group,
    HeldChange,
    IdpConnection,
    Membership,
    Organization,
    RoleAssignment,
    SeatEvent,
    SeatKind,
    User,
)
from app.provisioning import (
    Actor,
    ContractSpec,
    GroupSpec,
    MemberChange,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)
from app.provisioning.access import UserState
from app.provisioning.access.writes import write_seats
from app.reporting import seat_summary, user_access
from tests.support import someone_waits_for_a_lock

ACTOR = Actor(kind="system", label="test")


@pytest.fixture
def service(session: Session) -> Iterator[ProvisioningService]:
    org = provisioning.create_organization(session, "Acme", "acme", paid_seats=100)
    yield ProvisioningService(session, org, ACTOR)


def roles_of(session: Session, user: User) -> dict[str, str]:
    rows = session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id))
    return {r.project_key: r.role_key for r in rows}


def ledger(session: Session, user: User) -> list[tuple[str, str]]:
    rows = session.scalars(
        select(SeatEvent).where(SeatEvent.user_id == user.id).order_by(SeatEvent.id)
    )
    return [(e.from_seat, e.to_seat) for e in rows]


def group(service: ProvisioningService, name: str) -> str:
    return str(service.create_group(GroupSpec(display_name=name)).id)


def join(service: ProvisioningService, group_id: str, user: User) -> None:
    current = service.get_group(group_id)
    spec = GroupSpec(current.display_name, current.external_id)
    service.update_group(group_id, spec, MemberChange(added=[str(user.id)]))


def leave(service: ProvisioningService, group_id: str, user: User) -> None:
    current = service.get_group(group_id)
    spec = GroupSpec(current.display_name, current.external_id)
    service.update_group(group_id, spec, MemberChange(removed=[str(user.id)]))


def set_active(service: ProvisioningService, user: User, active: bool) -> None:
    service.replace_user(user.id, UserSpec(user_name=user.user_name, is_active=active))


def test_join_move_admin_leave_and_return(service: ProvisioningService, session: Session) -> None:
    service.create_project("web", "Website")
    engineering = group(service, "Engineering")
    contractors = group(service, "Contractors")
    admins = group(service, "Admins")
    service.create_rule(RuleSpec("displayName", "engineering", "team_member", "*"))
    service.create_rule(RuleSpec("id", contractors, "client", "*"))
    service.create_rule(RuleSpec("displayName", "Admins", "project_admin", "web"))
    alice = service.create_user(UserSpec(user_name="alice@acme.example"))
    assert roles_of(session, alice) == {} and alice.seat == "none"

    join(service, engineering, alice)
    assert roles_of(session, alice) == {"*": "team_member"}
    assert alice.seat == "paid"

    leave(service, engineering, alice)
    join(service, contractors, alice)
    assert roles_of(session, alice) == {"*": "client"}
    assert alice.seat == "free"
    assert ledger(session, alice) == [("none", "paid"), ("paid", "none"), ("none", "free")]

    join(service, admins, alice)
    assert roles_of(session, alice) == {"*": "client", "web": "project_admin"}
    assert alice.seat == "paid"
    access = user_access(session, service.organization, service.catalogue(), alice)
    [why] = access["why_paid"]
    assert why["project"] == "web" and why["because"][0]["group"] == "Admins"

    set_active(service, alice, False)
    assert roles_of(session, alice) == {} and alice.seat == "none"
    assert session.get(User, alice.id) is not None
    assert len(ledger(session, alice)) == 5

    set_active(service, alice, True)
    assert roles_of(session, alice) == {"*": "client", "web": "project_admin"}
    assert alice.seat == "paid"
    assert service.organization.paid_seat_count == 1


def test_delete_releases_roles_and_seat_but_keeps_history(
    service: ProvisioningService, session: Session
) -> None:
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    bob = service.create_user(UserSpec(user_name="bob@acme.example"))
    join(service, engineering, bob)
    service.delete_user(bob.id)
    assert roles_of(session, bob) == {} and bob.seat == "none"
    assert service.organization.paid_seat_count == 0
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.target_id == str(bob.id))
    ).all()
    assert {"user.created", "role.granted", "role.revoked", "user.deleted"} <= set(actions)


def test_tier_full_under_hold_makes_next_user_pending_then_promotes(
    service: ProvisioningService, session: Session
) -> None:
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))
    service.set_default_role("view_only")
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    bob = service.create_user(UserSpec(user_name="bob@acme.example"))
    carol = service.create_user(UserSpec(user_name="carol@acme.example"))
    assert roles_of(session, carol) == {"*": "view_only"} and carol.seat == "free"
    join(service, engineering, bob)
    join(service, engineering, carol)
    assert bob.seat == "paid"
    assert carol.seat == "free" and carol.pending_since is not None
    assert roles_of(session, carol) == {"*": "view_only"}
    summary = seat_summary(session, service.organization)
    # Carol waits for a paid seat on a free one: counted as pending, not also as free.
    assert (summary.paid, summary.free, summary.pending) == (1, 0, 1)

    set_active(service, bob, False)
    assert carol.seat == "paid" and carol.pending_since is None
    assert roles_of(session, carol) == {"*": "team_member"}


def test_allow_policy_grants_and_flags_overage(
    service: ProvisioningService, session: Session
) -> None:
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="allow"))
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    for name in ("a", "b"):
        join(service, engineering, service.create_user(UserSpec(user_name=f"{name}@x.example")))
    summary = seat_summary(session, service.organization)
    assert (summary.paid, summary.overage) == (2, 1)
    flagged = session.scalars(
        select(AuditEvent.after).where(AuditEvent.action == "seat.changed")
    ).all()
    assert any(after and after.get("overage") for after in flagged)


def test_growing_the_tier_promotes_pending_users_in_arrival_order(
    service: ProvisioningService, session: Session
) -> None:
    service.set_contract(ContractSpec(paid_seat_tier=0, policy="hold"))
    engineering = group(service, "Engineering")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    users = [service.create_user(UserSpec(user_name=f"u{i}@x.example")) for i in range(3)]
    for user in users:
        join(service, engineering, user)
    assert [u.seat for u in users] == ["none", "none", "none"]
    assert all(u.pending_since is not None for u in users)
    service.set_contract(ContractSpec(paid_seat_tier=2, policy="hold"))
    assert [u.seat for u in users] == ["paid", "paid", "none"]
    assert users[2].pending_since is not None


def test_rule_change_recomputes_only_affected_users(
    service: ProvisioningService, session: Session
) -> None:
    engineering = group(service, "Engineering")
    sales = group(service, "Sales")
    eng_user = service.create_user(UserSpec(user_name="e@x.example"))
    sales_user = service.create_user(UserSpec(user_name="s@x.example"))
    join(service, engineering, eng_user)
    join(service, sales, sales_user)
    rule = service.create_rule(RuleSpec("displayName", "Engineering", "client"))
    assert roles_of(session, eng_user) == {"*": "client"}
    assert roles_of(session, sales_user) == {}
    service.update_rule(rule.id, RuleSpec("displayName", "Sales", "comment_only"))
    assert roles_of(session, eng_user) == {}
    assert roles_of(session, sales_user) == {"*": "comment_only"}
    service.delete_rule(rule.id)
    assert roles_of(session, sales_user) == {}


def test_group_rename_and_delete_follow_display_name_rules(
    service: ProvisioningService, session: Session
) -> None:
    team = group(service, "Team")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    user = service.create_user(UserSpec(user_name="r@x.example"))
    join(service, team, user)
    assert roles_of(session, user) == {}
    service.update_group(team, GroupSpec("Engineering"))
    assert roles_of(session, user) == {"*": "team_member"}
    service.delete_group(team)
    assert roles_of(session, user) == {} and user.seat == "none"


def test_custom_role_rank_decides_between_rules(
    service: ProvisioningService, session: Session
) -> None:
    lead = service.create_custom_role("lead", "Lead", 350)
    engineering = group(service, "Engineering")
    leads = group(service, "Leads")
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    service.create_rule(RuleSpec("displayName", "Leads", lead.key))
    user = service.create_user(UserSpec(user_name="l@x.example"))
    join(service, engineering, user)
    join(service, leads, user)
    assert roles_of(session, user) == {"*": "team_member"}
    service.update_custom_role(lead.key, rank=450)
    assert roles_of(session, user) == {"*": lead.key}


def test_mass_grant_is_held_until_confirmed(service: ProvisioningService, session: Session) -> None:
    service.set_guard_thresholds(
        max_new_paid_seats=2, max_new_paid_share=1.0, max_new_project_admins=10
    )
    everyone = group(service, "Everyone")
    users = [service.create_user(UserSpec(user_name=f"m{i}@x.example")) for i in range(3)]
    for user in users:
        join(service, everyone, user)
    service.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    held = session.scalars(select(HeldChange)).one()
    assert held.status == "held" and held.new_paid_seats == 3
    assert all(roles_of(session, u) == {} and u.seat == "none" for u in users)
    service.confirm_held(held.id)
    assert all(roles_of(session, u) == {"*": "team_member"} for u in users)
    assert held.status == "confirmed"


@pytest.mark.parametrize(
    ("others", "held_reason"),
    [
        # 12 new paid seats among 40 active users is 30%, over the 25% limit: held, and the
        # reason gives the exact share.
        (28, "new paid seats for 30% of active users exceed the limit of 25%"),
        # Among 60 it is 20%: applied. Counting stops at 49 users (12 / 0.25 + 1), which
        # already proves the share under the limit.
        (48, None),
    ],
)
def test_share_of_active_users_is_measured_without_counting_everyone(
    service: ProvisioningService, session: Session, others: int, held_reason: str | None
) -> None:
    service.set_guard_thresholds(
        max_new_paid_seats=1000, max_new_paid_share=0.25, max_new_project_admins=1000
    )
    everyone = group(service, "Everyone")
    members = [service.create_user(UserSpec(user_name=f"e{i}@x.example")) for i in range(12)]
    for i in range(others):
        service.create_user(UserSpec(user_name=f"o{i}@x.example"))
    for user in members:
        join(service, everyone, user)
    service.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    held = session.scalars(select(HeldChange)).all()
    if held_reason is None:
        assert held == [] and all(u.seat == "paid" for u in members)
    else:
        assert [h.reasons for h in held] == [[held_reason]]
        assert all(u.seat == "none" for u in members)


def test_revocations_apply_even_when_grants_are_held(
    service: ProvisioningService, session: Session
) -> None:
    admins = group(service, "Admins")
    rule = service.create_rule(RuleSpec("displayName", "Admins", "project_admin"))
    users = [service.create_user(UserSpec(user_name=f"a{i}@x.example")) for i in range(3)]
    for user in users:
        join(service, admins, user)
    service.set_guard_thresholds(
        max_new_paid_seats=0, max_new_paid_share=1.0, max_new_project_admins=0
    )
    service.update_rule(rule.id, RuleSpec("displayName", "Admins", "view_only"))
    assert session.scalars(select(HeldChange)).all() == []
    assert all(roles_of(session, u) == {"*": "view_only"} for u in users)


def test_dry_run_shows_the_change_and_writes_nothing(
    service: ProvisioningService, session: Session
) -> None:
    engineering = group(service, "Engineering")
    user = service.create_user(UserSpec(user_name="d@x.example"))
    join(service, engineering, user)
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    result = service.dry_run(
        lambda s: s.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    )
    [change] = result.changes
    assert change.seat_before.value == "none" and change.seat_after.value == "paid"
    assert (result.totals_before.paid, result.totals_after.paid) == (0, 1)
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
    assert roles_of(session, user) == {}
    assert session.scalars(select(SeatEvent).where(SeatEvent.to_seat == "paid")).all() == []


# ------------------------------------------------------------ concurrency


@pytest.mark.postgresql_only
def test_parallel_grants_never_exceed_the_last_seats(committing_engine: Engine) -> None:
    sessions = make_sessions(committing_engine)
    slug = f"race-{uuid.uuid4().hex[:8]}"
    with sessions.begin() as session:
        org = provisioning.create_organization(session, "Race", slug, paid_seats=5)
        org_id = org.id
        service = ProvisioningService(session, org, ACTOR)
        service.set_contract(ContractSpec(paid_seat_tier=5, policy="hold"))
        service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
        users = [
            service.create_user(UserSpec(user_name=f"p{i}@race.example", is_active=False))
            for i in range(20)
        ]
        service.create_group(GroupSpec("Engineering", member_ids=[str(u.id) for u in users]))
        user_ids = [u.id for u in users]
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def activate(user_id: Any) -> None:
        try:
            barrier.wait()
            with sessions.begin() as session:
                org = session.get(Organization, org_id)
                assert org is not None
                service = ProvisioningService(session, org, ACTOR)
                user = service.get_user(user_id)
                service.replace_user(user_id, UserSpec(user_name=user.user_name, is_active=True))
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    threads = [threading.Thread(target=activate, args=(u,)) for u in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions.begin() as session:
        final = session.get(Organization, org_id)
        assert final is not None
        summary = seat_summary(session, final)
        assert (summary.paid, summary.pending) == (5, 15)
        assert final.paid_seat_count == 5
        # Twenty writers sealed their events into one chain without a gap or a fork.
        chain = audit.verify(session, org_id)
        assert chain.is_ok and chain.count > 20


def test_a_seat_is_never_written_for_a_user_who_left_meanwhile(
    service: ProvisioningService, session: Session
) -> None:
    # A delete in an organization without rules does not wait for the seat counter; a first
    # rule planned from the user's state before that delete must fail, not seat them.
    user = service.create_user(UserSpec(user_name="gone@x.example"))
    planned = UserState(user.id, user.user_name, True, None, "none", None)
    service.delete_user(user.id)
    with pytest.raises(ConflictError, match="try again"):
        write_seats(service.scope, [(planned, SeatKind.PAID, None)])
    assert session.get(User, user.id).seat == "none"  # type: ignore[union-attr]


@pytest.mark.postgresql_only
@pytest.mark.parametrize("mapped", [True, False], ids=["seats-in-play", "no-seats"])
def test_parallel_deletes_and_member_changes_in_shared_groups_never_deadlock(
    committing_engine: Engine, mapped: bool
) -> None:
    # Deletes of free users bump their groups' versions last; deletes of paid users first,
    # before the seat counter. Both must get along with each other and with member additions.
    sessions = make_sessions(committing_engine)
    slug = f"shared-{uuid.uuid4().hex[:8]}"
    with sessions.begin() as session:
        org = provisioning.create_organization(session, "Shared", slug, paid_seats=4)
        org_id = org.id
        service = ProvisioningService(session, org, ACTOR)
        if mapped:
            service.set_contract(ContractSpec(paid_seat_tier=4, policy="hold"))
            service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
        paid = [service.create_user(UserSpec(user_name=f"p{i}@x.example")) for i in range(6)]
        free = [service.create_user(UserSpec(user_name=f"f{i}@x.example")) for i in range(6)]
        joiners = [service.create_user(UserSpec(user_name=f"j{i}@x.example")) for i in range(6)]
        engineering = service.create_group(
            GroupSpec("Engineering", member_ids=[str(u.id) for u in paid])
        )
        everyone = service.create_group(
            GroupSpec("Everyone", member_ids=[str(u.id) for u in [*paid, *free]])
        )
        leaving = [u.id for u in [*paid, *free]]
        joining = [u.id for u in joiners]
        group_ids = [engineering.id, everyone.id]
    barrier = threading.Barrier(len(leaving) + len(joining))
    errors: list[BaseException] = []

    def work(changes: list[Any]) -> None:
        try:
            barrier.wait()
            # One transaction per change, as an IdP sends one request per user or group.
            for change in changes:
                with sessions.begin() as session:
                    change(ProvisioningService(session, org_id, ACTOR))
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    def delete(user_id: uuid.UUID) -> list[Any]:
        return [lambda service: service.delete_user(user_id)]

    def join(user_id: uuid.UUID) -> list[Any]:
        def add_to(group_id: uuid.UUID) -> Any:
            def add(service: ProvisioningService) -> None:
                group = service.get_group(group_id)
                change = MemberChange(added=[str(user_id)])
                service.update_group(group_id, GroupSpec(group.display_name), change)

            return add

        return [add_to(group_id) for group_id in group_ids]

    changes = [delete(u) for u in leaving] + [join(u) for u in joining]
    threads = [threading.Thread(target=work, args=(c,)) for c in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], [str(e)[:600] for e in errors]
    with sessions.begin() as session:
        members = set(
            session.scalars(select(Membership.user_id).where(Membership.group_id.in_(group_ids)))
        )
        assert members == set(joining)
        final = session.get(Organization, org_id)
        assert final is not None
        summary = seat_summary(session, final)
        # Every joiner is in Engineering now; four of them fit the tier, two wait.
        expected = (4, 2) if mapped else (0, 0)
        assert (summary.paid, summary.pending) == expected
        assert final.paid_seat_count == expected[0]
        assert audit.verify(session, org_id).is_ok


@pytest.mark.postgresql_only
def test_an_sso_login_locks_its_groups_before_it_writes_the_user(
    committing_engine: Engine,
) -> None:
    # A SCIM member change locks its group, then the rows of the users it recomputes. A login
    # that wrote the user's row first and then waited for that group would deadlock against it.
    from app.provisioning import LoginClaims

    sessions = make_sessions(committing_engine)
    first = LoginClaims(subject="ada", email="ada@x.example", groups=["Engineering"])
    with sessions.begin() as session:
        org = provisioning.create_organization(session, "Login", f"login-{uuid.uuid4().hex[:8]}")
        org_id = org.id
        service = ProvisioningService(session, org, ACTOR)
        for name in ("Engineering", "Design"):
            service.create_rule(RuleSpec("displayName", name, "team_member"))
            group(service, name)
        connection = service.create_connection("IdP", "oidc", {}, {})
        connection_id = connection.id
        user_id = service.login(connection, first).id  # just in time, an SSO member
        engineering = session.scalar(select(Group.id).where(Group.display_name == "Engineering"))
    errors: list[BaseException] = []

    def log_in_again() -> None:
        # Renamed, and moved from Engineering to Design: the sync changes Engineering.
        claims = replace(first, display_name="Ada L.", groups=["Design"])
        try:
            with sessions.begin() as session:
                connection = session.get(IdpConnection, connection_id)
                assert connection is not None
                ProvisioningService(session, org_id, ACTOR).login(connection, claims)
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    with committing_engine.connect() as scim:
        scim.execute(text("SET lock_timeout = '5s'"))
        scim.execute(
            text("SELECT id FROM groups WHERE id = :id FOR NO KEY UPDATE"), {"id": engineering}
        )
        login = threading.Thread(target=log_in_again)
        login.start()
        assert someone_waits_for_a_lock(scim), errors  # the login waits for Engineering
        # The member change goes on to the user's row: free, as the login has written nothing.
        scim.execute(text("UPDATE users SET version = version + 1 WHERE id = :id"), {"id": user_id})
        scim.commit()
    login.join(timeout=30)
    assert errors == [], [str(e)[:600] for e in errors]
    with sessions.begin() as session:
        user = session.get(User, user_id)
        assert user is not None and user.display_name == "Ada L."
        groups = session.scalars(
            select(Group.display_name).join(Membership).where(Membership.user_id == user_id)
        ).all()
        assert groups == ["Design"]
        assert roles_of(session, user) == {"*": "team_member"}
        assert audit.verify(session, org_id).is_ok


@pytest.mark.parametrize(("policy", "accepted"), [("refuse", False), ("default", True)])
def test_sso_login_with_only_the_default_role_follows_the_no_role_policy(
    service: ProvisioningService, session: Session, policy: str, accepted: bool
) -> None:
    from app.errors import LoginRefusedError
    from app.provisioning import LoginClaims

    service.set_default_role("view_only")
    service.set_sso_options(no_role_policy=policy)
    connection = service.create_connection("IdP", "oidc", {}, {})
    claims = LoginClaims(subject="s-1", email="x@acme.example", groups=["Unmapped"])
    if accepted:
        user = service.login(connection, claims)
        assert roles_of(session, user) == {"*": "view_only"}
    else:
        with pytest.raises(LoginRefusedError) as refused:
            service.login(connection, claims)
        assert refused.value.reason == "no_role"
