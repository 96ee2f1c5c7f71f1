"""The export benchmark's organizations: projects, groups and mapping rules through the
provisioning service; users, memberships, role assignments, the seat ledger and the hash-chained
audit trail by bulk COPY, as the service would have written them. Setup, not measurement."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import audit, create_app, organizations, provisioning
from app.config import Settings
from app.db import make_engine, unit_of_work
from app.models import AuditEvent, AuditHead
from app.provisioning import Actor, GroupSpec, ProvisioningService, RuleSpec
from bench.harness import copy_rows

SECRET = "bench-secret-key-that-is-long-enough-0123456789"
GROUPS = 20
# group index → (role, project) for the groups that a mapping rule maps
RULES = {
    0: ("team_member", "*"),
    1: ("team_member", "*"),
    2: ("team_member", "*"),
    3: ("client", "*"),
    4: ("client", "*"),
    5: ("comment_only", "*"),
    6: ("project_admin", "web"),
    7: ("view_only", "docs"),
}
PAID = {"project_admin", "team_member"}
RANK = {"project_admin": 5, "team_member": 4, "client": 3, "comment_only": 2, "view_only": 1}
BOT = Actor(kind="scim", label="okta")
DRIFTED_ROLE = "view_only"


def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET, log_level="WARNING")


# -------------------------------------------------------------- database


@dataclass(frozen=True, slots=True)
class Database:
    admin_url: str
    name: str

    @property
    def url(self) -> str:
        url = make_url(self.admin_url).set(database=self.name)
        if url.drivername == "postgresql":  # psycopg 3, not SQLAlchemy's default psycopg2
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(False)

    @property
    def conninfo(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    def create(self) -> None:
        engine = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.name}"'))
        engine.dispose()

    def drop(self) -> None:
        engine = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        engine.dispose()


# ------------------------------------------------------------------ seed


@dataclass
class Seeded:
    slug: str
    users: int
    token: str
    events: int = 0
    seconds: float = 0.0


@dataclass
class Person:
    id: UUID
    name: str
    active: bool
    groups: list[int]
    created_at: datetime
    last_login_at: datetime | None
    roles: dict[str, tuple[str, int]] = field(default_factory=dict)  # project → (role, group)
    seat: str = "none"
    # Its stored role was changed behind the service's back: what the drift report finds.
    is_drifted: bool = False


def people(count: int, slug: str, rng: random.Random, now: datetime) -> list[Person]:
    """Users in one or two groups each; every 50th deactivated; roles from RULES."""
    result = []
    for index in range(count):
        groups = [index % GROUPS]
        if index % 5 == 0:
            groups.append((index * 7 + 3) % GROUPS)
        person = Person(
            id=uuid.uuid4(),
            name=f"user{index:06d}@{slug}.example",
            active=index % 50 != 0,
            groups=sorted(set(groups)),
            created_at=now - timedelta(days=330) + timedelta(seconds=index * 240 / max(count, 1)),
            last_login_at=None if index % 10 == 0 else now - timedelta(days=rng.randint(0, 120)),
        )
        if person.active:
            for group in person.groups:
                if group not in RULES:
                    continue
                role, project = RULES[group]
                held = person.roles.get(project)
                if held is None or RANK[role] > RANK[held[0]]:
                    person.roles[project] = (role, group)
            if person.roles:
                paid = any(role in PAID for role, _ in person.roles.values())
                person.seat = "paid" if paid else "free"
                person.is_drifted = index % 200 == 1
        result.append(person)
    return result


@dataclass(frozen=True, slots=True)
class Layout:
    """An organization being seeded: its id, its groups' ids by group index, and the ids of the
    mapping rules by the index of the group they map."""

    org_id: UUID
    group_ids: Sequence[UUID]
    rule_ids: dict[int, UUID]

    def sources(self, group: int) -> str:
        """The provenance of a role granted through `group`'s rule, as JSON."""
        return json.dumps(
            [{"rule_id": str(self.rule_ids[group]), "group_id": str(self.group_ids[group])}]
        )


def seed(database: Database, slug: str, count: int, rng: random.Random) -> Seeded:
    """An organization of `count` users: groups and rules through the service, the rest COPY."""
    started = time.perf_counter()
    layout, token = create_organization(database, slug, count)
    now = datetime.now(UTC)
    directory = people(count, slug, rng, now)
    with psycopg.connect(database.conninfo) as connection:
        copy_directory(connection, layout, directory)
        events = copy_audit_trail(connection, layout, directory)
        paid = sum(1 for p in directory if p.seat == "paid")
        connection.execute(
            "UPDATE organizations SET paid_seat_count = %s WHERE id = %s", (paid, layout.org_id)
        )
        connection.commit()
    return Seeded(slug, count, token, events, time.perf_counter() - started)


def create_organization(database: Database, slug: str, paid_seats: int) -> tuple[Layout, str]:
    """The organization with its projects, GROUPS groups and the RULES through the service;
    its layout and an admin API token."""
    app = create_app(settings(database.url))
    with app.app_context(), unit_of_work() as session:
        organization = provisioning.create_organization(
            session, slug.title(), slug, paid_seats=paid_seats
        )
        service = ProvisioningService(session, organization, BOT)
        service.create_project("web", "Website")
        service.create_project("docs", "Docs")
        group_ids = [service.create_group(GroupSpec(f"Group {n:02d}")).id for n in range(GROUPS)]
        rule_ids = {
            n: service.create_rule(RuleSpec("id", str(group_ids[n]), role, project)).id
            for n, (role, project) in RULES.items()
        }
        service.create_rule(RuleSpec("displayName", "Departed", "client"))  # a group gone
        token = provisioning.create_token(
            session, organization, "bench", scope=organizations.TokenScope.ADMIN
        ).secret
        layout = Layout(organization.id, group_ids, rule_ids)
    app.extensions["engine"].dispose()
    return layout, token


def analyzed(cursor: psycopg.Cursor[Any], table: str) -> None:
    # Statistics before the next COPY: its foreign-key checks are planned against this table,
    # and planned as sequential scans while it still looks empty.
    cursor.execute(f"ANALYZE {table}".encode())


def copy_directory(
    connection: psycopg.Connection[Any], layout: Layout, directory: Sequence[Person]
) -> None:
    """The users, their memberships, role assignments and seat ledger, by COPY."""
    with connection.cursor() as cursor:
        copy_rows(
            cursor,
            "COPY users (id, org_id, user_name, user_name_key, is_active, source, primary_email, "
            "multi_values, extensions, seat, last_login_at, created_at, updated_at, version) "
            "FROM STDIN",
            _user_rows(layout.org_id, directory),
        )
        analyzed(cursor, "users")
        copy_rows(
            cursor,
            "COPY memberships (group_id, user_id, org_id, source, created_at) FROM STDIN",
            _membership_rows(layout, directory),
        )
        analyzed(cursor, "memberships")
        copy_rows(
            cursor,
            "COPY role_assignments (org_id, user_id, project_key, role_key, sources, granted_at) "
            "FROM STDIN",
            _role_assignment_rows(layout, directory),
        )
        analyzed(cursor, "role_assignments")
        copy_rows(
            cursor,
            "COPY seat_events (org_id, user_id, from_seat, to_seat, is_pending, reason, cause, "
            "at) FROM STDIN",
            _seat_event_rows(layout.org_id, directory),
        )


def _user_rows(org_id: UUID, directory: Sequence[Person]) -> Iterator[tuple[object, ...]]:
    for p in directory:
        email = json.dumps({"emails": [{"value": p.name, "primary": True}]})
        yield (
            p.id,
            org_id,
            p.name,
            p.name,
            p.active,
            "scim",
            p.name,
            email,
            "{}",
            p.seat,
            p.last_login_at,
            p.created_at,
            p.created_at,
            1,
        )


def _membership_rows(layout: Layout, directory: Sequence[Person]) -> Iterator[tuple[object, ...]]:
    for p in directory:
        for group in p.groups:
            yield (layout.group_ids[group], p.id, layout.org_id, "scim", p.created_at)


def _role_assignment_rows(
    layout: Layout, directory: Sequence[Person]
) -> Iterator[tuple[object, ...]]:
    for p in directory:
        for project, (role, group) in p.roles.items():
            role_key = DRIFTED_ROLE if p.is_drifted else role
            yield (layout.org_id, p.id, project, role_key, layout.sources(group), p.created_at)


def _seat_event_rows(org_id: UUID, directory: Sequence[Person]) -> Iterator[tuple[object, ...]]:
    # Every user with a seat got it when created; none was pending.
    for p in directory:
        if p.seat != "none":
            yield (org_id, p.id, "none", p.seat, False, "user_created", "scim:okta", p.created_at)


@dataclass(frozen=True, slots=True)
class TrailEntry:
    """One audit event before it is sealed into the chain."""

    at: datetime
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def trail_of(layout: Layout, directory: Sequence[Person]) -> Iterator[TrailEntry]:
    """What the service would have recorded creating each user, in order."""
    step = timedelta(microseconds=1)
    for p in directory:
        at = p.created_at
        yield TrailEntry(
            at,
            "user.created",
            "user",
            str(p.id),
            None,
            {
                "user_name": p.name,
                "external_id": None,
                "active": p.active,
            },
        )
        for group in p.groups:
            at += step
            yield TrailEntry(
                at,
                "membership.added",
                "group",
                str(layout.group_ids[group]),
                None,
                {"user_id": str(p.id)},
            )
        for project, (role, group) in p.roles.items():
            at += step
            yield TrailEntry(
                at,
                "role.granted",
                "user",
                str(p.id),
                None,
                {
                    "project": project,
                    "role": role,
                    "sources": json.loads(layout.sources(group)),
                    "reason": "user_created",
                },
            )
        if p.seat != "none":
            at += step
            yield TrailEntry(
                at,
                "seat.changed",
                "user",
                str(p.id),
                {"seat": "none", "pending": False},
                {
                    "seat": p.seat,
                    "pending": False,
                    "overage": False,
                    "reason": "user_created",
                },
            )


def copy_audit_trail(
    connection: psycopg.Connection[Any], layout: Layout, directory: Sequence[Person]
) -> int:
    """Append the users' events to the organization's chain, sealed as `app.audit` seals;
    how many."""
    chain = audit.chain_of(layout.org_id)
    head = connection.execute(
        "SELECT seq, hash FROM audit_heads WHERE chain = %s", (chain,)
    ).fetchone()
    seq, previous = (int(head[0]), str(head[1])) if head else (0, "")
    count = 0
    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY audit_events (org_id, chain, at, actor_type, actor, action, target_type, "
            "target_id, before, after, request_id, source_ip, user_agent, seq, prev_hash, hash) "
            "FROM STDIN"
        ) as copy,
    ):
        for entry in trail_of(layout, directory):
            seq += 1
            digest = seal(layout.org_id, chain, entry, seq, previous)
            copy.write_row(
                (
                    layout.org_id,
                    chain,
                    entry.at,
                    BOT.kind,
                    BOT.label,
                    entry.action,
                    entry.target_type,
                    entry.target_id,
                    json.dumps(entry.before) if entry.before is not None else None,
                    json.dumps(entry.after),
                    None,
                    None,
                    None,
                    seq,
                    previous,
                    digest,
                )
            )
            previous = digest
            count += 1
    connection.execute(
        f"UPDATE {AuditHead.__tablename__} SET seq = %s, hash = %s WHERE chain = %s",
        (seq, previous, chain),
    )
    return count


def seal(org_id: UUID, chain: str, entry: TrailEntry, seq: int, previous: str) -> str:
    """The hash `app.audit` gives this event at `seq` after the event hashed `previous`."""
    event = AuditEvent(
        org_id=org_id,
        chain=chain,
        at=entry.at,
        actor_type=BOT.kind,
        actor=BOT.label,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        before=entry.before,
        after=entry.after,
    )
    return audit.event_hash(event, seq, previous)


def analyze(database: Database) -> None:
    with psycopg.connect(database.conninfo, autocommit=True) as connection:
        for table in ("users", "memberships", "role_assignments", "seat_events", "audit_events"):
            connection.execute(f"VACUUM ANALYZE {table}".encode())
