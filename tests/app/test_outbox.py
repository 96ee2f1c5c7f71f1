"""Blue's outbox: an event for every change Blue acts on, written with the change's
transaction (never after a rollback or a no-op), carrying the new state, numbered per
organization in commit order."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import audit, outbox, provisioning
from app.db import make_sessions
from app.errors import ConflictError
from app.models import AuditHead, OutboxEvent, User
from app.provisioning import (
    Actor,
    ContractSpec,
    GroupSpec,
    MemberChange,
    ProvisioningService,
    RuleSpec,
    UserSpec,
)
from app.provisioning.access import recompute

ACTOR = Actor(kind="system", label="test")


@pytest.fixture
def service(session: Session) -> Iterator[ProvisioningService]:
    org = provisioning.create_organization(session, "Acme", "acme", paid_seats=100)
    service = ProvisioningService(session, org, ACTOR)
    service.create_project("web", "Website")
    session.commit()
    yield service


def published(session: Session, org_id: uuid.UUID, after: int = 0) -> list[OutboxEvent]:
    return list(
        session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.org_id == org_id, OutboxEvent.seq > after)
            .order_by(OutboxEvent.seq)
        )
    )


def types(events: list[OutboxEvent]) -> list[tuple[str, uuid.UUID | None]]:
    return [(e.type, e.user_id) for e in events]


def last_seq(session: Session, org_id: uuid.UUID) -> int:
    return (
        session.scalar(select(func.max(OutboxEvent.seq)).where(OutboxEvent.org_id == org_id)) or 0
    )


def test_a_created_user_is_provisioned_with_its_state(
    service: ProvisioningService, session: Session
) -> None:
    user = service.create_user(
        UserSpec(
            user_name="alice@acme.example",
            external_id="okta-1",
            attributes={"display_name": "Alice A", "given_name": "Alice"},
            multi_values={"emails": [{"value": "Alice@Acme.example", "primary": True}]},
        )
    )
    # Nothing is written before the transaction commits.
    assert published(session, service.org_id) == []
    session.commit()
    [event] = published(session, service.org_id)
    assert (event.type, event.user_id, event.seq) == ("user.provisioned", user.id, 1)
    assert event.payload == {
        "user_name": "alice@acme.example",
        "external_id": "okta-1",
        "email": "alice@acme.example",
        "display_name": "Alice A",
        "given_name": "Alice",
        "family_name": None,
        "active": True,
        "deleted": False,
        "source": "scim",
        "relinked": False,
    }
    assert event.at is not None and event.id is not None


def test_access_and_seat_events_carry_the_roles_with_their_rules_and_groups(
    service: ProvisioningService, session: Session
) -> None:
    user = service.create_user(UserSpec(user_name="alice@acme.example"))
    group = service.create_group(GroupSpec("Engineering", member_ids=[str(user.id)]))
    rule = service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "web"))
    session.commit()
    events = published(session, service.org_id)
    assert types(events) == [
        ("user.provisioned", user.id),
        ("access.changed", user.id),
        ("seat.changed", user.id),
    ]
    assert events[1].payload == {
        "roles": [
            {
                "project": "web",
                "role": "team_member",
                "sources": [{"rule_id": str(rule.id), "group_id": str(group.id)}],
            }
        ],
        "reason": "rule_created",
    }
    assert events[2].payload == {
        "seat": "paid",
        "pending": False,
        "overage": False,
        "status": "paid",
        "reason": "rule_created",
    }


def test_a_default_role_gives_a_new_user_access_and_a_free_seat_in_one_transaction(
    service: ProvisioningService, session: Session
) -> None:
    service.set_default_role("view_only")
    session.commit()
    user = service.create_user(UserSpec(user_name="bob@acme.example"))
    session.commit()
    events = published(session, service.org_id)
    assert types(events) == [
        ("user.provisioned", user.id),
        ("access.changed", user.id),
        ("seat.changed", user.id),
    ]
    assert events[1].payload["roles"] == [{"project": "*", "role": "view_only", "sources": []}]
    assert (events[2].payload["seat"], events[2].payload["status"]) == ("free", "free")


def test_update_deactivate_reactivate_delete_and_relink_each_publish_the_new_state(
    service: ProvisioningService, session: Session
) -> None:
    service.set_default_role("client")
    user = service.create_user(UserSpec(user_name="carol@acme.example"))
    session.commit()
    start = last_seq(session, service.org_id)

    def step(spec: UserSpec | None) -> list[OutboxEvent]:
        before = last_seq(session, service.org_id)
        if spec is None:
            service.delete_user(user.id)
        else:
            service.replace_user(user.id, spec)
        session.commit()
        return published(session, service.org_id, before)

    renamed = step(UserSpec(user_name="carol@acme.example", attributes={"family_name": "C"}))
    assert types(renamed) == [("user.updated", user.id)]
    assert renamed[0].payload["family_name"] == "C"

    off = step(UserSpec(user_name="carol@acme.example", is_active=False))
    assert [e.type for e in off] == ["user.deactivated", "access.changed", "seat.changed"]
    assert off[0].payload["active"] is False and off[0].payload["family_name"] is None
    assert off[1].payload == {"roles": [], "reason": "deactivated"}
    assert (off[2].payload["seat"], off[2].payload["status"]) == ("none", "released")

    on = step(UserSpec(user_name="carol@acme.example", is_active=True))
    assert [e.type for e in on] == ["user.reactivated", "access.changed", "seat.changed"]
    assert on[1].payload["roles"] == [{"project": "*", "role": "client", "sources": []}]

    gone = step(None)
    assert [e.type for e in gone] == ["user.deleted", "access.changed", "seat.changed"]
    assert (gone[0].payload["deleted"], gone[0].payload["active"]) == (True, False)

    service.create_user(UserSpec(user_name="carol@acme.example"))
    session.commit()
    back = published(session, service.org_id, start + 10)
    assert [e.type for e in back] == ["user.provisioned", "access.changed", "seat.changed"]
    assert back[0].user_id == user.id
    assert (back[0].payload["relinked"], back[0].payload["deleted"]) == (True, False)
    assert [e.seq for e in published(session, service.org_id)] == list(range(1, start + 14))


def test_a_user_waiting_for_a_paid_seat_is_published_pending(
    service: ProvisioningService, session: Session
) -> None:
    service.set_contract(ContractSpec(paid_seat_tier=1, policy="hold"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    first = service.create_user(UserSpec(user_name="a@acme.example"))
    second = service.create_user(UserSpec(user_name="b@acme.example"))
    service.create_group(GroupSpec("Engineering", member_ids=[str(first.id), str(second.id)]))
    session.commit()
    seats = {
        e.user_id: e.payload for e in published(session, service.org_id) if e.type == "seat.changed"
    }
    # Users are seated in id order: the one that waits is the other.
    paid, waiting = sorted((first.id, second.id), key=lambda i: seats[i]["status"])
    assert seats[paid]["status"] == "paid"
    assert seats[waiting] == {
        "seat": "none",  # team_member is paid, and no free role falls back
        "pending": True,
        "overage": False,
        "status": "pending",
        "reason": "membership_changed",
    }
    # The paid seat freed by the seated user's departure goes to the waiting one: one
    # transaction, so one seat event each, with the final state.
    before = last_seq(session, service.org_id)
    service.delete_user(paid)
    session.commit()
    after = {(e.type, e.user_id): e.payload for e in published(session, service.org_id, before)}
    assert after[("seat.changed", paid)]["status"] == "released"
    assert after[("seat.changed", waiting)] == {
        "seat": "paid",
        "pending": False,
        "overage": False,
        "status": "paid",
        "reason": "promoted",
    }
    assert after[("access.changed", waiting)]["roles"][0]["role"] == "team_member"


def test_a_contract_change_publishes_the_contract_now(
    service: ProvisioningService, session: Session
) -> None:
    service.set_contract(ContractSpec(paid_seat_tier=25, policy="hold", ends_on=date(2027, 12, 31)))
    session.commit()
    [event] = published(session, service.org_id)
    assert (event.type, event.user_id) == ("organization.contract_changed", None)
    assert event.payload == {
        "paid_seat_tier": 25,
        "policy": "hold",
        "billing_terms": "annual",
        "starts_on": None,
        "ends_on": "2027-12-31",
    }


# ------------------------------------------------------- nothing to publish


def test_a_rolled_back_change_publishes_nothing(
    service: ProvisioningService, session: Session
) -> None:
    service.set_default_role("client")
    service.create_user(UserSpec(user_name="ghost@acme.example"))
    service.set_contract(ContractSpec(paid_seat_tier=3))
    session.rollback()
    assert published(session, service.org_id) == []
    # Nothing queued survives into the next transaction either.
    service.create_project("docs", "Docs")
    session.commit()
    assert published(session, service.org_id) == []


def test_a_refused_change_publishes_nothing(service: ProvisioningService, session: Session) -> None:
    service.create_user(UserSpec(user_name="taken@acme.example"))
    session.commit()
    before = last_seq(session, service.org_id)
    with pytest.raises(ConflictError):
        service.create_user(UserSpec(user_name="Taken@acme.example"))
    session.rollback()
    assert last_seq(session, service.org_id) == before == 1


def test_a_replace_that_changes_nothing_publishes_nothing(
    service: ProvisioningService, session: Session
) -> None:
    spec = UserSpec(user_name="dan@acme.example", attributes={"title": "CTO"})
    user = service.create_user(spec)
    session.commit()
    service.replace_user(user.id, spec)
    session.commit()
    # A change of an attribute Blue does not receive is audited, not published.
    service.replace_user(user.id, UserSpec(user_name="dan@acme.example", attributes={}))
    session.commit()
    assert types(published(session, service.org_id)) == [("user.provisioned", user.id)]


def test_a_recompute_that_changes_nothing_publishes_nothing(
    service: ProvisioningService, session: Session
) -> None:
    service.set_default_role("client")
    user = service.create_user(UserSpec(user_name="erin@acme.example"))
    session.commit()
    before = last_seq(session, service.org_id)
    recompute(service.scope, [user.id], reason="check")
    session.commit()
    assert last_seq(session, service.org_id) == before


def test_a_dry_run_publishes_nothing(service: ProvisioningService, session: Session) -> None:
    user = service.create_user(UserSpec(user_name="fay@acme.example"))
    service.create_group(GroupSpec("Engineering", member_ids=[str(user.id)]))
    session.commit()
    result = service.dry_run(
        lambda trial: trial.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    )
    assert result.changes
    session.commit()
    assert types(published(session, service.org_id)) == [("user.provisioned", user.id)]


def test_a_rolled_back_savepoint_takes_its_events_with_it(
    service: ProvisioningService, session: Session
) -> None:
    kept = service.create_user(UserSpec(user_name="kept@acme.example"))
    savepoint = session.begin_nested()
    service.create_user(UserSpec(user_name="dropped@acme.example"))
    savepoint.rollback()
    with session.begin_nested():
        also = service.create_user(UserSpec(user_name="also@acme.example"))
    session.commit()
    assert types(published(session, service.org_id)) == [
        ("user.provisioned", kept.id),
        ("user.provisioned", also.id),
    ]


# ------------------------------------------------------------- coalescing


def test_one_users_events_of_a_type_in_one_transaction_become_one_with_the_final_state(
    service: ProvisioningService, session: Session
) -> None:
    user = service.create_user(UserSpec(user_name="gus@acme.example"))
    session.commit()
    service.replace_user(user.id, UserSpec(user_name="gus@acme.example", external_id="1"))
    service.replace_user(user.id, UserSpec(user_name="gus@acme.example", external_id="2"))
    service.create_group(GroupSpec("Engineering", member_ids=[str(user.id)]))
    service.create_rule(RuleSpec("displayName", "Engineering", "client"))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member", "web"))
    session.commit()
    events = published(session, service.org_id, 1)
    assert types(events) == [
        ("user.updated", user.id),
        ("access.changed", user.id),
        ("seat.changed", user.id),
    ]
    assert events[0].payload["external_id"] == "2"
    assert sorted((r["project"], r["role"]) for r in events[1].payload["roles"]) == [
        ("*", "client"),
        ("web", "team_member"),
    ]
    assert events[2].payload["seat"] == "paid"


# ------------------------------------------------------------------ order


def test_each_organization_numbers_its_own_events(session: Session) -> None:
    acme = provisioning.create_organization(session, "Acme", "acme")
    globex = provisioning.create_organization(session, "Globex", "globex")
    for org in (acme, globex, acme):
        ProvisioningService(session, org, ACTOR).create_user(
            UserSpec(user_name=f"{uuid.uuid4().hex[:8]}@x.example")
        )
        session.commit()
    assert [e.seq for e in published(session, acme.id)] == [1, 2]
    assert [e.seq for e in published(session, globex.id)] == [1]
    heads = {h.chain: h.outbox_seq for h in session.scalars(select(AuditHead))}
    assert (heads[str(acme.id)], heads[str(globex.id)]) == (2, 1)
    assert audit.verify(session, acme.id).is_ok


def test_a_rule_change_on_hundreds_of_users_publishes_them_in_bulk(
    service: ProvisioningService, session: Session
) -> None:
    service.set_guard_thresholds(10_000, 1.0, 10_000, window_minutes=0)
    users = [service.create_user(UserSpec(user_name=f"u{i}@acme.example")) for i in range(300)]
    group = service.create_group(GroupSpec("Everyone", member_ids=[str(u.id) for u in users]))
    session.commit()
    before = last_seq(session, service.org_id)
    service.create_rule(RuleSpec("id", str(group.id), "team_member"))
    session.commit()
    events = published(session, service.org_id, before)
    assert [e.seq for e in events] == list(range(before + 1, before + 601))
    granted = [e.user_id for e in events if e.type == "access.changed"]
    assert len(granted) == 300 and set(granted) == {u.id for u in users}
    assert {e.type for e in events} == {"access.changed", "seat.changed"}
    assert {e.payload["roles"][0]["role"] for e in events if e.type == "access.changed"} == {
        "team_member"
    }
    assert audit.verify(session, service.org_id).is_ok


# ------------------------------------------------------ feed, commit order


def test_the_feed_pages_by_cursor(service: ProvisioningService, session: Session) -> None:
    for i in range(5):
        service.create_user(UserSpec(user_name=f"p{i}@acme.example"))
        session.commit()
    first = outbox.read_feed(session, service.org_id, 0, 2)
    assert ([e["seq"] for e in first.events], first.next_cursor, first.has_more) == (
        [1, 2],
        "2",
        True,
    )
    rest = outbox.read_feed(session, service.org_id, outbox.parse_cursor(first.next_cursor), 10)
    assert ([e["seq"] for e in rest.events], rest.next_cursor, rest.has_more) == (
        [3, 4, 5],
        "5",
        False,
    )
    empty = outbox.read_feed(session, service.org_id, 5, 10)
    assert (empty.events, empty.next_cursor, empty.has_more) == ([], "5", False)
    assert set(first.events[0]) == {"id", "seq", "type", "timestamp", "org_id", "user_id", "data"}
    for bad in ("-1", "abc", "1.5", "9" * 20):
        with pytest.raises(ValueError):
            outbox.parse_cursor(bad)


def _new_org(engine: Engine) -> uuid.UUID:
    with make_sessions(engine).begin() as session:
        org = provisioning.create_organization(session, "Race", f"race-{uuid.uuid4().hex[:8]}")
        return org.id


@pytest.mark.postgresql_only
def test_the_transaction_that_commits_first_gets_the_lower_number(
    committing_engine: Engine,
) -> None:
    sessions = make_sessions(committing_engine)
    org_id = _new_org(committing_engine)
    early, late = sessions(), sessions()
    try:
        # `early` starts and makes its change first, but commits last.
        ProvisioningService(early, org_id, ACTOR).create_user(UserSpec(user_name="e@x.example"))
        early.flush()
        ProvisioningService(late, org_id, ACTOR).create_user(UserSpec(user_name="l@x.example"))
        late.commit()
        early.commit()
    finally:
        early.close()
        late.close()
    with sessions() as session:
        names = [(e.seq, e.payload["user_name"]) for e in published(session, org_id)]
    assert names == [(1, "l@x.example"), (2, "e@x.example")]


@pytest.mark.postgresql_only
def test_a_reader_following_the_cursor_misses_nothing_committed_meanwhile(
    committing_engine: Engine,
) -> None:
    sessions = make_sessions(committing_engine)
    org_id = _new_org(committing_engine)
    writers, per_writer = 8, 15
    done = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def write(index: int) -> None:
        try:
            for n in range(per_writer):
                with sessions.begin() as session:
                    ProvisioningService(session, org_id, ACTOR).create_user(
                        UserSpec(user_name=f"w{index}-{n}@x.example")
                    )
        except BaseException as error:  # collected and re-raised in the test thread
            errors.append(error)

    def read() -> None:
        cursor = 0
        try:
            while True:
                finished = done.is_set()
                with sessions() as session:
                    page = outbox.read_feed(session, org_id, cursor, 7)
                seen.extend(e["seq"] for e in page.events)
                cursor = int(page.next_cursor)
                if finished and not page.has_more and not page.events:
                    return
        except BaseException as error:
            errors.append(error)

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join()
    assert errors == []
    assert seen == list(range(1, writers * per_writer + 1))
    with sessions() as session:
        users = session.scalar(select(func.count()).select_from(User).where(User.org_id == org_id))
    assert users == writers * per_writer


def test_member_changes_publish_access_for_the_members_they_touch(
    service: ProvisioningService, session: Session
) -> None:
    stays = service.create_user(UserSpec(user_name="stays@acme.example"))
    leaves = service.create_user(UserSpec(user_name="leaves@acme.example"))
    group = service.create_group(
        GroupSpec("Engineering", member_ids=[str(stays.id), str(leaves.id)])
    )
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    session.commit()
    before = last_seq(session, service.org_id)
    service.update_group(group.id, GroupSpec("Engineering"), MemberChange(removed=[str(leaves.id)]))
    session.commit()
    events: list[Any] = published(session, service.org_id, before)
    assert types(events) == [("access.changed", leaves.id), ("seat.changed", leaves.id)]
    assert events[0].payload == {"roles": [], "reason": events[0].payload["reason"]}
