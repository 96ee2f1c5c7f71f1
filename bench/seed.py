"""Seed a bench organization's directory fast: COPY straight into the tables.

Seeding is setup, not measurement. The rows look like what the provisioning service writes for a
user created over SCIM with no mapping rules (seat `none`, no role assignments), so the service
reads them as its own.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg

from bench.harness import copy_rows

SMALL_GROUP_SIZE = 10
OTHER_GROUP_SIZE = 10
USER_COLUMNS = (
    "id, org_id, user_name, user_name_key, external_id, is_active, source, display_name, "
    "display_name_key, given_name, family_name, primary_email, multi_values, extensions, seat, "
    "created_at, updated_at, version"
)


def user_name(index: int) -> str:
    return f"user{index:06d}@example.com"


def external_id(index: int) -> str:
    return f"ext-{index:06d}"


@dataclass(frozen=True, slots=True)
class SeededGroup:
    id: UUID
    display_name: str
    external_id: str
    member_indexes: Sequence[int]


@dataclass(frozen=True, slots=True)
class Directory:
    """What the seeder wrote: user i is `user_ids[i]`, named `user_name(i)`."""

    org_id: UUID
    user_ids: Sequence[UUID]
    big: SeededGroup
    small: SeededGroup
    # Created empty: the target of the "add 2,000 members in PATCHes of 50" measurement.
    empty: SeededGroup
    group_count: int
    # Users in no group at all, by index: safe to move in and out of the big and small groups.
    ungrouped: Sequence[int]


def organization_id(conninfo: str, slug: str) -> UUID:
    with psycopg.connect(conninfo) as connection:
        row = connection.execute("SELECT id FROM organizations WHERE slug = %s", (slug,)).fetchone()
    if row is None:
        raise RuntimeError(f"organization {slug!r} not found")
    value = row[0]
    return value if isinstance(value, UUID) else UUID(str(value))


def seed_directory(
    conninfo: str,
    org_id: UUID,
    users: int,
    groups: int,
    big_group: int,
    big_name: str = "All Staff",
    small_name: str = "Ten People",
    empty_name: str = "Batch Target",
) -> Directory:
    """Insert `users` users (with a work email each) and `groups` groups, one of `big_group`
    members (users 0 .. big_group-1), one of ten, one empty, the rest of ten random members."""
    if groups < 3:
        raise ValueError("at least 3 groups are needed (big, small, empty)")
    if big_group > users:
        raise ValueError("the big group cannot have more members than there are users")
    base = datetime.now(UTC) - timedelta(days=1)
    user_ids = [uuid4() for _ in range(users)]
    group_rows = group_layout(users, groups, big_group, (big_name, small_name, empty_name))
    grouped = {i for group in group_rows for i in group.member_indexes}
    ungrouped = [i for i in range(users) if i not in grouped]

    with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
        _skip_foreign_key_checks(cursor)
        copy_rows(
            cursor,
            f"COPY users ({USER_COLUMNS}) FROM STDIN",
            _user_rows(org_id, user_ids, base),
        )
        copy_rows(
            cursor,
            "COPY user_values (org_id, user_id, attribute, value, value_key, type, is_primary) "
            "FROM STDIN",
            _email_rows(org_id, user_ids),
        )
        copy_rows(
            cursor,
            "COPY groups (id, org_id, display_name, display_name_key, external_id, extensions, "
            "created_at, updated_at, version) FROM STDIN",
            _group_rows(org_id, group_rows, base),
        )
        copy_rows(
            cursor,
            "COPY memberships (group_id, user_id, org_id, source, created_at) FROM STDIN",
            _membership_rows(org_id, group_rows, user_ids, base),
        )
        connection.commit()
    _settle(conninfo)
    return Directory(
        org_id=org_id,
        user_ids=user_ids,
        big=group_rows[0],
        small=group_rows[1],
        empty=group_rows[2],
        group_count=len(group_rows),
        ungrouped=ungrouped,
    )


def group_layout(
    users: int, groups: int, big_group: int, names: tuple[str, str, str]
) -> list[SeededGroup]:
    """The groups and their members by user index, the same for the same sizes: the big, the
    small and the empty group (named `names`), then teams of ten random users."""
    rng = random.Random(20261127)
    big_name, small_name, empty_name = names
    outside_big = list(range(big_group, users))
    small_pool = outside_big if len(outside_big) >= 4 * SMALL_GROUP_SIZE else list(range(users))
    small_members = sorted(rng.sample(small_pool, min(SMALL_GROUP_SIZE, len(small_pool))))
    group_rows: list[SeededGroup] = [
        SeededGroup(uuid4(), big_name, "grp-big", list(range(big_group))),
        SeededGroup(uuid4(), small_name, "grp-small", small_members),
        SeededGroup(uuid4(), empty_name, "grp-empty", []),
    ]
    for number in range(3, groups):
        members = sorted(rng.sample(range(users), min(OTHER_GROUP_SIZE, users)))
        group_rows.append(SeededGroup(uuid4(), f"Team {number:05d}", f"grp-{number:05d}", members))
    return group_rows


def _skip_foreign_key_checks(cursor: psycopg.Cursor[Any]) -> None:
    # The rows are consistent by construction: skip the per-row foreign-key checks, which
    # make COPY into user_values and memberships 15-20 times slower. Replica mode skips
    # every trigger, so only when the tables have none of their own.
    own_triggers = cursor.execute(
        "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = ANY("
        "ARRAY['users', 'user_values', 'groups', 'memberships']::regclass[])"
    ).fetchone()
    if own_triggers is not None and own_triggers[0] == 0:
        cursor.execute("SET session_replication_role = replica")


def _user_rows(
    org_id: UUID, user_ids: Sequence[UUID], base: datetime
) -> Iterator[tuple[object, ...]]:
    for index, user_id in enumerate(user_ids):
        name = user_name(index)
        email = {"value": name, "type": "work", "primary": True}
        at = base + timedelta(milliseconds=index)
        display = f"User {index:06d}"
        yield (
            user_id,
            org_id,
            name,
            name.lower(),
            external_id(index),
            True,
            "scim",
            display,
            display.lower(),
            "User",
            f"{index:06d}",
            name.lower(),
            json.dumps({"emails": [email]}),
            "{}",
            "none",
            at,
            at,
            1,
        )


def _email_rows(org_id: UUID, user_ids: Sequence[UUID]) -> Iterator[tuple[object, ...]]:
    for index, user_id in enumerate(user_ids):
        name = user_name(index)
        yield (org_id, user_id, "emails", name, name.lower(), "work", True)


def _group_rows(
    org_id: UUID, groups: Sequence[SeededGroup], base: datetime
) -> Iterator[tuple[object, ...]]:
    for number, group in enumerate(groups):
        at = base + timedelta(milliseconds=number)
        yield (
            group.id,
            org_id,
            group.display_name,
            group.display_name.lower(),
            group.external_id,
            "{}",
            at,
            at,
            1,
        )


def _membership_rows(
    org_id: UUID, groups: Sequence[SeededGroup], user_ids: Sequence[UUID], base: datetime
) -> Iterator[tuple[object, ...]]:
    for group in groups:
        for index in group.member_indexes:
            yield (group.id, user_ids[index], org_id, "scim", base)


def _settle(conninfo: str) -> None:
    """Statistics for the planner and the seed's pages on disk, before anything is timed."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for table in ("users", "user_values", "groups", "memberships"):
            connection.execute(f"VACUUM ANALYZE {table}".encode())
        # Write the seed's dirty pages out now, so that a checkpoint does not write them in the
        # middle of a timed operation: the setup is not part of what is measured.
        connection.execute(b"CHECKPOINT")
