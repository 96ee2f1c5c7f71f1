"""`python -m bench.import_bench`: the CSV import of users, timed, its memory measured, against
the stack's floor.

For each size (default 10,000 and 50,000 rows) a fresh PostgreSQL database is migrated and
given an organization whose mapping rules grant roles through the groups the file names
(`Everyone` → View Only everywhere, `Team k` → Team Member in project p{k%5}); every tenth
row also has a project role (`p1:Comment Only`). The guard's thresholds are raised out of the
way: the bench measures the grants, not their holding. The file is generated first (its
generation's own peak memory traced), then a fresh interpreter previews, starts and runs the
import through `app.imports` (the service's batched operation, 500 rows per transaction), then
imports the same file again (every row unchanged); its peak RSS over its RSS before the import
shows the memory is flat in the file's size.

The stack floor: a minimal Flask + SQLAlchemy Core program that reads the same file and
inserts the same users into a bare table, 500 rows per transaction, in a fresh interpreter
on a fresh database: what any import on this stack costs before it does the directory's work
(users, emails, groups, memberships, roles, seats, audit trail, Blue's events).

    python -m bench.import_bench [--rows 10000,50000] [--postgres URL]

Exits 1 when the largest import takes longer than the 2 minutes the issue allows.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import Postgres

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DATABASE = "bench_import"
SLUG = "bench"
TEAMS = 20
TARGET_SECONDS = 120.0
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def log(message: str) -> None:
    print(f"[import-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write_file(path: Path, rows: int) -> tuple[float, int]:
    """Generate the import file; the seconds and traced peak bytes it took."""
    tracemalloc.start()
    started = time.perf_counter()
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["email", "givenName", "familyName", "groups", "projectRoles"])
        for i in range(rows):
            roles = "p1:Comment Only" if i % 10 == 0 else ""
            writer.writerow(
                [
                    f"u{i:06d}@bench.example",
                    f"Given{i}",
                    f"Family{i}",
                    f"Everyone;Team {i % TEAMS}",
                    roles,
                ]
            )
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak


def prepare(url: str) -> None:
    """Migrate the database and set up the organization, its projects and rules."""
    from app import create_app, migrate, provisioning
    from app.config import Settings
    from app.db import unit_of_work
    from app.provisioning import ProvisioningService, RuleSpec

    migrate.upgrade(url)
    app = create_app(Settings(database_url=url, secret_key=SECRET, log_level="WARNING"))
    with app.app_context(), unit_of_work() as session:
        org = provisioning.create_organization(session, "Bench", SLUG, paid_seats=1_000_000)
        service = ProvisioningService(session, org, provisioning.OPERATOR)
        service.set_guard_thresholds(1_000_000, 1.0, 1_000_000, window_minutes=0)
        for p in range(5):
            service.create_project(f"p{p}", f"Project {p}")
        service.create_rule(RuleSpec("displayName", "Everyone", "view_only", "*"))
        for k in range(TEAMS):
            service.create_rule(RuleSpec("displayName", f"Team {k}", "team_member", f"p{k % 5}"))
    app.extensions["engine"].dispose()


def child_import(url: str, path: str) -> dict[str, Any]:
    """In a fresh interpreter: preview + run the file, then the same file again."""
    from app import create_app, imports, organizations
    from app.audit import Actor
    from app.config import Settings
    from app.db import unit_of_work

    app = create_app(Settings(database_url=url, secret_key=SECRET, log_level="WARNING"))
    actor = Actor(kind="cli", label="bench")
    figures: dict[str, Any] = {"rss_before_kib": _peak_rss_kib()}
    with app.app_context():
        for run in ("first", "again"):
            started = time.perf_counter()
            with unit_of_work() as session, open(path, encoding="utf-8-sig", newline="") as f:
                org = organizations.get_organization(session, SLUG)
                job = imports.create_job(session, org.id, actor, Path(path).name, f)
                imports.start_job(session, org.id, job.id)
            previewed = time.perf_counter()
            done = imports.run_import(job.id)
            finished = time.perf_counter()
            figures[run] = {
                "preview_s": previewed - started,
                "run_s": finished - previewed,
                "total_s": finished - started,
                "status": done.status,
                **done.counts(),
            }
    figures["rss_peak_kib"] = _peak_rss_kib()
    return figures


def child_floor(url: str, path: str) -> dict[str, Any]:
    """In a fresh interpreter: the same users into a bare table, Flask + Core, no more."""
    import uuid

    from flask import Flask
    from sqlalchemy import Column, MetaData, String, Table, Uuid, create_engine, insert

    metadata = MetaData()
    users = Table(
        "floor_users",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("email", String(320), unique=True),
        Column("given_name", String(256)),
        Column("family_name", String(256)),
    )
    engine = create_engine(url)
    metadata.create_all(engine)
    app = Flask("floor")
    started = time.perf_counter()
    with app.app_context(), open(path, encoding="utf-8-sig", newline="") as f:
        batch: list[dict[str, Any]] = []
        for row in csv.DictReader(f):
            batch.append(
                {
                    "id": uuid.uuid4(),
                    "email": row["email"],
                    "given_name": row["givenName"],
                    "family_name": row["familyName"],
                }
            )
            if len(batch) == 500:
                with engine.begin() as connection:
                    connection.execute(insert(users), batch)
                batch = []
        if batch:
            with engine.begin() as connection:
                connection.execute(insert(users), batch)
    engine.dispose()
    return {"total_s": time.perf_counter() - started, "rss_peak_kib": _peak_rss_kib()}


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def in_child(mode: str, url: str, path: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.import_bench", "--child", mode, url, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-3000:])
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def measure(postgres: Postgres, rows: int, directory: Path) -> dict[str, Any]:
    """One size: the file generated, imported twice, and the floor, each on a fresh database."""
    path = directory / f"users-{rows}.csv"
    generation_s, generation_peak = write_file(path, rows)
    log(f"{rows} rows: file of {path.stat().st_size:,} bytes in {generation_s:.1f} s")
    url = postgres.create(f"{DATABASE}_{rows}")
    prepare(url)
    try:
        figures = in_child("import", url, path)
    finally:
        postgres.drop(f"{DATABASE}_{rows}")
    log(f"{rows} rows: imported in {figures['first']['total_s']:.1f} s")
    floor_url = postgres.create(f"{DATABASE}_floor_{rows}")
    try:
        floor = in_child("floor", floor_url, path)
    finally:
        postgres.drop(f"{DATABASE}_floor_{rows}")
    log(f"{rows} rows: floor in {floor['total_s']:.1f} s")
    return {
        "rows": rows,
        "generation_s": generation_s,
        "generation_peak": generation_peak,
        "import": figures,
        "floor": floor,
    }


def table(results: Sequence[dict[str, Any]]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| rows | preview | run | total | rows/s | again (unchanged) | floor (Flask + Core) "
        "| import ÷ floor | peak RSS − before import | floor peak RSS | generation peak (traced) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        first, again, floor = r["import"]["first"], r["import"]["again"], r["floor"]
        growth = (r["import"]["rss_peak_kib"] - r["import"]["rss_before_kib"]) / 1024
        lines.append(
            f"| {r['rows']:,} | {first['preview_s']:.1f} s | {first['run_s']:.1f} s "
            f"| {first['total_s']:.1f} s | {r['rows'] / first['total_s']:,.0f} "
            f"| {again['total_s']:.1f} s | {floor['total_s']:.1f} s "
            f"| {first['total_s'] / floor['total_s']:.1f}× | {growth:.0f} MiB "
            f"| {floor['rss_peak_kib'] / 1024:.0f} MiB | {r['generation_peak'] / 1024:.0f} KiB |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_bench", description=__doc__)
    parser.add_argument("--rows", default="10000,50000", help="sizes, comma-separated")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL admin URL")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, url, path = args.child
        run = child_import if mode == "import" else child_floor
        print(json.dumps(run(url, path)))
        return 0
    postgres = Postgres(args.postgres)
    sizes = [int(n) for n in args.rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="import-bench-") as directory:
        results = [measure(postgres, n, Path(directory)) for n in sizes]
    print(table(results))
    ok = True
    for r in results:
        first, again = r["import"]["first"], r["import"]["again"]
        if (first["created"], first["failed"], again["unchanged"]) != (r["rows"], 0, r["rows"]):
            print(f"{r['rows']} rows: unexpected counts {first} / {again}")
            ok = False
    largest = max(results, key=lambda r: r["rows"])
    seconds = largest["import"]["first"]["total_s"]
    print(f"{largest['rows']:,} rows in {seconds:.1f} s (target < {TARGET_SECONDS:.0f} s)")
    return 0 if ok and seconds < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
