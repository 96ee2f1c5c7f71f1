"""`python -m bench.dry_run_bench`: a dry run's cost against its size (#16 item 1).

A fresh PostgreSQL database gets an organization of `--users` users (default 2,000) in
`--groups` groups (default 20: `Everyone` with every user, one empty, the rest of ten random
members each), 20 projects and one rule (`Everyone` → View Only everywhere). Each measured dry
run proposes N new rules (`--rules`, default 25 to 400):
rule n gives Team Member (Comment Only past 400 rules) in project p{n // groups % 20} to the
members of group n % groups, so one rule in `groups` reaches every user. It runs through
`app.admin.changes.dry_run`, as `POST /api/v1/dry-run` does but past the API's bound of 100
changes, in its own transaction; the median time of `--repeat` runs (default 3), the SQL
statements of one and the users it reports changed and held are printed per size.

Two guards: `raised` (thresholds above the directory's size: every grant applies, the dry run
times the recomputation) and `default` (the organization's default thresholds: the grants are
held, the dry run shows them as such).

    python -m bench.dry_run_bench [--users 2000] [--groups 20] [--rules 25,50,100,200,400]
                                  [--repeat 3] [--postgres URL]

Exits 1 when the largest dry run takes more than 1.25 times longer than the smallest, scaled
by their sizes (400 rules may take 16 × 1.25 times as long as 25): its cost is not linear in
the rules. Past the API's 100 because below it the users' recomputation, paid once, hides a
quadratic term.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from app.admin import changes
from app.db import make_engine, make_sessions
from app.models import Group, Organization
from app.provisioning import Actor, ProvisioningService, RuleSpec
from bench.harness import Postgres, load_average
from bench.plan import log
from bench.seed import organization_id, seed_directory
from bench.service import ORG_SLUG, prepare_database

DATABASE = "bench_dry_run"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
ACTOR = Actor(kind="admin_api", label="bench")
PROJECTS = 20
ROLES = ("team_member", "comment_only")
LINEAR_SLACK = 1.25


@dataclass(frozen=True, slots=True)
class Figure:
    """One dry run size under one guard: median seconds, statements and users changed."""

    guard: str
    rules: int
    seconds: float
    statements: int
    changed: int
    held_users: int

    @property
    def ms_per_rule(self) -> float:
        return self.seconds * 1000 / self.rules


def proposal(rules: int, groups: Sequence[str]) -> changes.ProposedChange:
    """N new rules over the groups, none a duplicate of another."""
    return changes.ProposedChange(
        add_rules=[
            changes.RuleInput(
                group=groups[n % len(groups)],
                role=ROLES[n // (len(groups) * PROJECTS) % len(ROLES)],
                project=f"p{n // len(groups) % PROJECTS}",
            )
            for n in range(rules)
        ]
    )


def _service(session: Session, org_id: UUID) -> ProvisioningService:
    organization = session.get(Organization, org_id)
    if organization is None:
        raise RuntimeError(f"organization {org_id} not found")
    return ProvisioningService(session, organization, ACTOR)


@contextmanager
def counting(engine: Engine) -> Iterator[list[int]]:
    """Count the SQL statements run on the engine meanwhile."""
    count = [0]

    def one(*_: Any) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", one)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", one)


def measure(
    engine: Engine,
    sessions: sessionmaker[Session],
    org_id: UUID,
    guard: str,
    rules: int,
    groups: Sequence[str],
    repeat: int,
) -> Figure:
    """The median of `repeat` dry runs of N new rules, each in its own transaction."""
    times: list[float] = []
    statements = changed = held = 0
    for _ in range(repeat):
        with sessions() as session, counting(engine) as count:
            started = time.perf_counter()
            outcome = changes.dry_run(_service(session, org_id), proposal(rules, groups))
            times.append(time.perf_counter() - started)
            session.rollback()
        statements, changed = count[0], len(outcome.result.changes)
        held = sum(h.user_count for h in outcome.held)
    return Figure(guard, rules, statistics.median(times), statements, changed, held)


def prepare(postgres: Postgres, users: int, groups: int) -> tuple[str, UUID, list[str]]:
    """The database, its organization's id and its groups' names."""
    log(f"dry run: creating database {DATABASE}")
    database = prepare_database(postgres, DATABASE, paid_seats=users * 2)
    org_id = organization_id(database.conninfo, ORG_SLUG)
    log(f"dry run: seeding {users:,} users in {groups} groups")
    seed_directory(database.conninfo, org_id, users, groups, users, big_name="Everyone")
    engine = make_engine(database.url)
    try:
        with make_sessions(engine).begin() as session:
            service = _service(session, org_id)
            for p in range(PROJECTS):
                service.create_project(f"p{p}", f"Project {p}")
            service.set_guard_thresholds(users * 2, 1.0, users * 2, window_minutes=0)
            service.create_rule(RuleSpec("displayName", "Everyone", "view_only", "*"))
        with make_sessions(engine)() as session:
            names = sorted(
                g.display_name for g in session.scalars(select(Group).where(Group.org_id == org_id))
            )
    finally:
        engine.dispose()
    return database.url, org_id, names


def set_guard(sessions: sessionmaker[Session], org_id: UUID, guard: str, users: int) -> None:
    with sessions.begin() as session:
        service = _service(session, org_id)
        if guard == "raised":
            service.set_guard_thresholds(users * 2, 1.0, users * 2, window_minutes=0)
        else:
            service.set_guard_thresholds(50, 0.2, 10, window_minutes=10)


def render(figures: Sequence[Figure]) -> str:
    lines = [
        "| guard | rules | dry run | per rule | SQL statements | users changed | users held |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for f in figures:
        lines.append(
            f"| {f.guard} | {f.rules} | {f.seconds:.2f} s | {f.ms_per_rule:.1f} ms "
            f"| {f.statements:,} | {f.changed:,} | {f.held_users:,} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dry_run_bench", description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--rules", default="25,50,100,200,400", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--guards", default="raised,default", help="raised, default or both")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = [int(n) for n in args.rules.split(",")]
    postgres = Postgres(args.postgres)
    print(f"load average at start (1/5/15 min): {load_average()}")
    url, org_id, groups = prepare(postgres, args.users, args.groups)
    engine = make_engine(url)
    sessions = make_sessions(engine)
    figures: list[Figure] = []
    try:
        for guard in args.guards.split(","):
            set_guard(sessions, org_id, guard, args.users)
            for rules in sizes:
                log(f"dry run: {rules} rules, guard {guard}")
                figures.append(measure(engine, sessions, org_id, guard, rules, groups, args.repeat))
    finally:
        engine.dispose()
        postgres.drop(DATABASE)
    print(render(figures))
    print(f"load average at end (1/5/15 min): {load_average()}")
    ok = True
    for guard in args.guards.split(","):
        mine = [f for f in figures if f.guard == guard]
        small, large = mine[0], mine[-1]
        ratio, linear = large.seconds / small.seconds, large.rules / small.rules
        print(
            f"{guard}: {large.rules} rules took {ratio:.1f}× as long as {small.rules} "
            f"(linear: {linear:.0f}×, limit {linear * LINEAR_SLACK:.0f}×)"
        )
        ok = ok and ratio <= linear * LINEAR_SLACK
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
