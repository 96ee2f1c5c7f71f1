"""Migrations run while the old version serves (issue #16 item 13, deploy/README.md
"Migrations"): from 0016 on, each is an expand step (it only adds what the old code ignores)
unless its module says `STEP = "contract"`. Checked on the SQL each migration really sends to
PostgreSQL, so raw SQL and batch operations are judged like the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event

from app import migrate
from app.db import make_engine

FIRST_CHECKED = "0016"  # the older ones predate the rule
CONTRACT = "contract"

# What an expand step may send: new tables and sequences, indexes, columns, foreign keys,
# comments, reads, and data written (a backfill, alembic's version row).
EXPAND = re.compile(
    r"^(CREATE (TABLE|SEQUENCE|(UNIQUE )?INDEX)|COMMENT ON|SELECT|INSERT|UPDATE|WITH|SET|SHOW"
    r"|ALTER TABLE \S+ ADD (COLUMN|CONSTRAINT \S+ FOREIGN KEY))\b"
)
# What the old code may trip on: anything dropped, renamed, deleted or retyped.
REMOVES = re.compile(r"^(DROP|TRUNCATE|DELETE)\b|^ALTER TABLE .*\b(DROP|RENAME|ALTER COLUMN)\b")


@dataclass(frozen=True, slots=True)
class Statement:
    revision: str
    sql: str


def normalized(sql: str) -> str:
    return " ".join(sql.split()).upper()


def table_created(sql: str) -> str | None:
    found = re.match(r"CREATE TABLE (\S+)", sql)
    return found.group(1) if found else None


def table_touched(sql: str) -> str | None:
    found = re.match(r"(?:ALTER TABLE|CREATE (?:UNIQUE )?INDEX \S+ ON) (\S+)", sql)
    return found.group(1) if found else None


def is_additive(sql: str, new_tables: set[str]) -> bool:
    """Would the old version serve on, unaware, while and after this runs?"""
    if table_touched(sql) in new_tables:
        return True  # a table the old code never sees
    if sql.startswith("CREATE UNIQUE INDEX"):
        return False  # the old code's writes may break it
    if " ADD COLUMN " in sql and " NOT NULL" in sql and " DEFAULT " not in sql:
        return False  # the old code's INSERTs would leave it NULL
    return bool(EXPAND.match(sql)) and not REMOVES.search(sql)


def statements_from(engine: Engine, first: str) -> list[Statement]:
    """Migrate to just before `first`, then revision by revision to the head, keeping what
    each one sends."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    checked = [r for r in revisions if r >= first]
    sent: list[Statement] = []
    with engine.begin() as connection:
        before = revisions[revisions.index(checked[0]) - 1]
        command.upgrade(migrate.alembic_config(connection=connection), before)
        for revision in checked:

            def keep(*args: object, revision: str = revision) -> None:
                sent.append(Statement(revision, normalized(str(args[2]))))

            event.listen(connection, "before_cursor_execute", keep)
            command.upgrade(migrate.alembic_config(connection=connection), revision)
            event.remove(connection, "before_cursor_execute", keep)
    return sent


@pytest.mark.postgresql_only
def test_migrations_from_0016_only_expand_unless_marked_contract(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    statements = statements_from(engine, FIRST_CHECKED)
    engine.dispose()
    script = ScriptDirectory.from_config(migrate.alembic_config())
    new_tables: dict[str, set[str]] = {}
    refused = []
    for statement in statements:
        tables = new_tables.setdefault(statement.revision, set())
        created = table_created(statement.sql)
        if created is not None:
            tables.add(created)
        module = script.get_revision(statement.revision).module
        if getattr(module, "STEP", "expand") == CONTRACT:
            continue
        if not is_additive(statement.sql, tables):
            refused.append(f"{statement.revision}: {statement.sql[:160]}")
    assert {s.revision for s in statements} >= {"0016", "0017", "0018"}
    assert refused == []


@pytest.mark.parametrize(
    ("sql", "additive"),
    [
        ("ALTER TABLE USERS ADD COLUMN NICKNAME VARCHAR(64)", True),
        ("ALTER TABLE USERS ADD COLUMN TIER VARCHAR(8) NOT NULL DEFAULT 'FREE'", True),
        ("ALTER TABLE USERS ADD COLUMN TIER VARCHAR(8) NOT NULL", False),
        ("ALTER TABLE USERS DROP COLUMN NICKNAME", False),
        ("ALTER TABLE USERS ALTER COLUMN NICKNAME SET NOT NULL", False),
        ("ALTER TABLE USERS ALTER COLUMN NICKNAME TYPE TEXT", False),
        ("ALTER TABLE USERS RENAME TO PEOPLE", False),
        ("DROP INDEX IX_USERS_ORG_ID", False),
        ("CREATE INDEX IX_USERS_NICKNAME ON USERS (NICKNAME)", True),
        ("CREATE UNIQUE INDEX UQ_USERS_NICKNAME ON USERS (NICKNAME)", False),
        ("DELETE FROM USERS", False),
        ("UPDATE ALEMBIC_VERSION SET VERSION_NUM='0019' WHERE VERSION_NUM = '0018'", True),
    ],
)
def test_the_expand_rule_judges_sql(sql: str, additive: bool) -> None:
    assert is_additive(sql, set()) is additive
