"""The audit trail: written with each change, hash-chained, append-only, verifiable."""

from __future__ import annotations

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import event, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import audit, provisioning
from app.models import AuditEvent, Organization
from app.provisioning import Actor, GroupSpec, ProvisioningService, RuleSpec, UserSpec

ACTOR = Actor(kind="cli", label="tester", request_id="req-1", source_ip="10.0.0.1")


def org_with_events(session: Session) -> Organization:
    org = provisioning.create_organization(session, "Acme", "acme", paid_seats=10)
    service = ProvisioningService(session, org, ACTOR)
    user = service.create_user(UserSpec(user_name="alice@acme.example"))
    service.create_group(GroupSpec("Engineering", member_ids=[str(user.id)]))
    service.create_rule(RuleSpec("displayName", "Engineering", "team_member"))
    session.commit()
    return org


def events(session: Session, org: Organization) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == org.id).order_by(AuditEvent.seq)
        )
    )


def test_each_change_writes_its_event_with_actor_and_request(session: Session) -> None:
    org = org_with_events(session)
    actions = [e.action for e in events(session, org)]
    assert actions[:4] == ["org.created", "user.created", "group.created", "membership.added"]
    assert {"rule.created", "role.granted", "seat.changed"} <= set(actions)
    first = events(session, org)[1]
    assert (first.actor_type, first.actor, first.request_id, first.source_ip) == (
        "cli",
        "tester",
        "req-1",
        "10.0.0.1",
    )


def test_events_are_absent_when_the_change_rolls_back(session: Session) -> None:
    org = provisioning.create_organization(session, "Acme", "acme")
    session.commit()
    committed = session.scalar(select(func.count()).select_from(AuditEvent))
    service = ProvisioningService(session, org, ACTOR)
    service.create_user(UserSpec(user_name="ghost@acme.example"))
    provisioning.create_token(session, org, "okta")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == committed == 1


def test_sealed_chain_verifies(session: Session, runner: FlaskCliRunner) -> None:
    org = org_with_events(session)
    chain = events(session, org)
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert chain[0].prev_hash == "" and all(
        later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:], strict=False)
    )
    result = audit.verify(session, org.id)
    assert result.is_ok and result.count == len(chain) and result.head_hash == chain[-1].hash
    output = runner.invoke(args=["audit", "verify", "--org", "acme"])
    assert output.exit_code == 0
    assert f"OK: {len(chain)} events, head {chain[-1].hash}" in output.output


def test_events_go_in_sealed_and_early_written_ones_are_sealed_in_place(session: Session) -> None:
    org = provisioning.create_organization(session, "Acme", "acme")
    session.commit()
    service = ProvisioningService(session, org, ACTOR)
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.split()))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        service.create_user(UserSpec(user_name="alice@acme.example"))
        session.commit()
        unread = list(statements)
        statements.clear()
        service.create_user(UserSpec(user_name="bob@acme.example"))
        # A read of the trail inside the transaction writes its event early, unsealed.
        assert session.scalar(select(func.count()).where(AuditEvent.hash.is_(None))) == 1
        service.create_user(UserSpec(user_name="carol@acme.example"))
        session.commit()
        read = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert not [s for s in unread if s.startswith("UPDATE audit_events")]
    assert [s for s in unread if s.startswith("INSERT INTO audit_events")]
    assert len([s for s in read if s.startswith("UPDATE audit_events")]) == 1
    chain = events(session, org)
    assert [e.action for e in chain] == ["org.created"] + ["user.created"] * 3
    assert [e.seq for e in chain] == [1, 2, 3, 4]
    assert audit.verify(session, org.id).is_ok


def tamper(session: Session, statement: str, **params: object) -> None:
    """Edit the table directly, as someone with database access would."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    session.execute(text(statement), params)
    session.expire_all()


def test_verify_catches_an_edited_event(session: Session, runner: FlaskCliRunner) -> None:
    org = org_with_events(session)
    target = events(session, org)[2]
    tamper(session, "UPDATE audit_events SET actor = 'mallory' WHERE id = :id", id=target.id)
    result = audit.verify(session, org.id)
    assert (result.broken_at, result.problem) == (3, "event #3 was altered")
    output = runner.invoke(args=["audit", "verify", "--org", "acme"])
    assert output.exit_code == 1 and "BROKEN at event #3" in output.output


def test_verify_catches_a_deleted_event(session: Session) -> None:
    org = org_with_events(session)
    target = events(session, org)[1]
    tamper(session, "DELETE FROM audit_events WHERE id = :id", id=target.id)
    result = audit.verify(session, org.id)
    assert (result.broken_at, result.problem) == (2, "event #2 is missing")


def test_verify_catches_a_deleted_last_event(session: Session) -> None:
    org = org_with_events(session)
    last = events(session, org)[-1]
    last_id, last_seq = last.id, last.seq or 0
    tamper(session, "DELETE FROM audit_events WHERE id = :id", id=last_id)
    result = audit.verify(session, org.id)
    assert not result.is_ok and result.problem == f"events after #{last_seq - 1} are missing"


def test_verify_catches_reordered_events(session: Session) -> None:
    org = org_with_events(session)
    first, second = events(session, org)[:2]
    tamper(session, "UPDATE audit_events SET seq = -1 WHERE id = :id", id=first.id)
    tamper(session, "UPDATE audit_events SET seq = 1 WHERE id = :id", id=second.id)
    tamper(session, "UPDATE audit_events SET seq = 2 WHERE id = :id", id=first.id)
    result = audit.verify(session, org.id)
    assert (result.broken_at, result.problem) == (1, "event #1 does not follow event #0")


@pytest.mark.postgresql_only
def test_postgresql_trigger_refuses_update_and_delete(session: Session) -> None:
    org = org_with_events(session)
    target = events(session, org)[0]
    for statement in (
        update(AuditEvent).where(AuditEvent.id == target.id).values(actor="mallory"),
        text("DELETE FROM audit_events WHERE id = :id").bindparams(id=target.id),
        text("TRUNCATE audit_events"),
    ):
        savepoint = session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(statement)
        savepoint.rollback()


def test_token_events_record_label_and_scope_never_the_secret(session: Session) -> None:
    org = provisioning.create_organization(session, "Acme", "acme")
    issued = provisioning.create_token(session, org, "okta", actor=ACTOR)
    provisioning.revoke_token(session, org, "okta", actor=ACTOR)
    session.commit()
    trail = [(e.action, e.after or e.before) for e in events(session, org)]
    assert [action for action, _ in trail] == ["org.created", "token.created", "token.revoked"]
    assert trail[1][1] is not None and trail[1][1]["label"] == "okta"
    assert issued.secret not in repr(trail)
    assert issued.token.token_hash not in repr(trail)


def test_large_changes_are_sealed_as_written_and_savepoints_keep_the_chain_whole(
    session: Session,
) -> None:
    org = provisioning.create_organization(session, "Acme", "acme", paid_seats=1000)
    service = ProvisioningService(session, org, ACTOR)
    service.set_guard_thresholds(10_000, 1.0, 10_000, window_minutes=0)
    users = [service.create_user(UserSpec(user_name=f"u{i}@acme.example")) for i in range(150)]
    service.create_group(GroupSpec("Everyone", member_ids=[str(u.id) for u in users]))
    # 150 grants and 150 seat changes: one batch over audit.SEAL_ON_WRITE, sealed on write.
    service.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
    assert audit.SEAL_ON_WRITE < 300
    # A dry run writes (and seals) inside a savepoint that is rolled back.
    service.dry_run(lambda s: s.create_rule(RuleSpec("displayName", "Everyone", "client")))
    service.create_user(UserSpec(user_name="late@acme.example"))
    session.commit()
    result = audit.verify(session, org.id)
    assert result.is_ok, result.problem
    assert result.count == len(events(session, org)) > 300
