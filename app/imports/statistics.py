"""Planner statistics refreshed as an import fills tables.

An import is a bulk load: a new organization's first one grows `users`, `user_values` and
`memberships` from nothing to 50,000 rows in a minute. Without statistics PostgreSQL prices
every index that starts with `org_id` alike and may look a userName up through the
externalId index, reading the whole organization per batch (measured: 3.5 minutes for 50,000
rows instead of under one). Autovacuum's analyze would catch up, but it may be off or a
minute behind; the import analyzes the tables it fills itself, as PostgreSQL's documentation
advises after a bulk load, each time a table has changed by more than its size since its last
analyze (so a few times per import, never on a large, settled table).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

# Rows changed since the last analyze beyond which a table's statistics are stale, plus
# its own size: 1,000, then ~3,000, ~7,000, … rows into a new table.
STALE_AFTER = 1_000
IMPORTED_TABLES = ("users", "user_values", "memberships", "role_assignments")
KNOWN_TABLES = (*IMPORTED_TABLES, "import_rows")
_STALE = text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.relname = ANY(:tables) AND s.schemaname = current_schema() "
    "AND s.n_mod_since_analyze > :after + greatest(c.reltuples, 0)"
)


def analyze(session: Session, tables: Sequence[str]) -> None:
    """ANALYZE these tables now (PostgreSQL only): inside a transaction, the rows it wrote
    itself count, which the activity counters `refresh_statistics` reads see only after
    commit (the preview writes a file's rows in one transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        for name in tables:
            if name in KNOWN_TABLES:
                session.execute(text(f'ANALYZE "{name}"'))


def refresh_statistics(session: Session, tables: Sequence[str] = IMPORTED_TABLES) -> list[str]:
    """ANALYZE those of `tables` whose statistics are stale (PostgreSQL only); their names."""
    if session.get_bind().dialect.name != "postgresql":
        return []
    stale = sorted(
        str(name)
        for name in session.execute(
            _STALE, {"tables": list(tables), "after": STALE_AFTER}
        ).scalars()
    )
    analyze(session, [name for name in stale if name in tables])
    return stale
