"""Export benchmark: access-review reports and the audit export of a large organization,
streamed, timed, and their peak memory measured.

    python -m bench.export_bench --users 100000 [--postgres URL] [--keep]

Creates a database `bench_export_<random>` on the PostgreSQL server, migrates it, seeds an
organization of `--users` users (and one of a tenth of that, to show memory does not grow with
the organization) with groups, mapping rules, role assignments, a seat ledger and a hash-chained
audit trail by bulk COPY (bench/export_seed.py), then runs each export in a fresh child process:
once timed, once under tracemalloc. Prints a Markdown table; drops the database unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
from flask import Flask
from sqlalchemy import text

from app import create_app, migrate
from app.db import unit_of_work
from bench.export_seed import Database, Seeded, analyze, seed, settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def log(message: str) -> None:
    print(f"[export-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -------------------------------------------------------------- measure


@dataclass(frozen=True, slots=True)
class Export:
    """One export to measure: a CLI command (written to a file) or an API GET (read streamed)."""

    title: str
    cli: tuple[str, ...] = ()
    api: str = ""
    # Rows are lines (minus a CSV header); in a JSON document, objects starting with this.
    row_start: str = ""

    @property
    def is_csv(self) -> bool:
        return "csv" in " ".join(self.cli) + self.api

    def describe(self) -> str:
        return f"`{' '.join(self.cli)}`" if self.cli else f"`GET {self.api}`"


def exports_for(seeded: Seeded, big: bool) -> list[Export]:
    org = ("--org", seeded.slug)
    access_csv = Export("access report, CSV (CLI)", ("report", "access", *org, "--format", "csv"))
    if not big:
        return [access_csv]
    a_year_ago = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
    now = datetime.now(UTC).isoformat()
    return [
        access_csv,
        Export("access report, JSON Lines (CLI)", ("report", "access", *org, "--format", "jsonl")),
        Export(
            "access report, JSON (API, streamed)",
            api="/api/v1/reports/access?" + urlencode({"format": "json"}),
            row_start='{"user_id": ',
        ),
        Export(
            "access report as of now, replayed from the audit trail, CSV (CLI)",
            ("report", "access", *org, "--as-of", now, "--format", "csv"),
        ),
        Export(
            "reclaim candidates (paid, no login for 30 days), CSV (CLI)",
            ("report", "access", *org, "--not-logged-in-days", "30", "--format", "csv"),
        ),
        Export("audit export, JSON Lines (CLI)", ("audit", "export", *org, "--format", "jsonl")),
        Export(
            "audit export, CSV (API, streamed)",
            api="/api/v1/audit/export?" + urlencode({"format": "csv"}),
        ),
        Export(
            "change report, last year, CSV (CLI)",
            ("report", "changes", *org, "--since", a_year_ago, "--format", "csv"),
        ),
        Export("drift report, CSV (CLI)", ("report", "drift", *org, "--format", "csv")),
    ]


@dataclass
class Result:
    export: Export
    users: int
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    traced_seconds: float = 0.0
    tracemalloc_peak: int = 0
    rss_growth: int = 0
    error: str = ""


def run_child(database: Database, seeded: Seeded, export: Export, trace: bool) -> dict[str, Any]:
    """Run one export in a fresh interpreter, so its memory figures are its own."""
    spec = {
        "url": database.url,
        "token": seeded.token,
        "cli": list(export.cli),
        "api": export.api,
        "row_start": export.row_start,
        "trace": trace,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench.export_bench", "--child", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-2000:] or completed.stdout[-2000:])
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def current_rss() -> int:
    """Resident memory now, in bytes (Linux /proc; elsewhere the high-water mark)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * os.sysconf("SC_PAGE_SIZE")


class RssSampler:
    """The highest resident memory seen while running, sampled every few milliseconds."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = current_rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, current_rss())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss())


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Inside the child: build the app, warm up, then run the export once and measure it."""
    app = create_app(settings(spec["url"]))
    with app.app_context(), unit_of_work() as session:
        session.execute(text("SELECT 1"))  # connect and import everything before measuring
    trace = bool(spec["trace"])
    with tempfile.TemporaryDirectory() as scratch:
        target = Path(scratch) / "export.out"
        rss_before = current_rss()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        with RssSampler() as sampler:
            if spec["cli"]:
                size, rows = export_by_cli(app, spec["cli"], target)
            else:
                size, rows = export_by_api(app, spec["api"], spec["token"], spec["row_start"])
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    return {
        "seconds": elapsed,
        "bytes": size,
        "lines": rows,
        "tracemalloc_peak": peak,
        "rss_growth": max(0, sampler.peak - rss_before),
    }


def export_by_cli(app: Flask, command: Sequence[str], target: Path) -> tuple[int, int]:
    """Run the command writing to `target`; its size and line count."""
    result = app.test_cli_runner().invoke(args=[*command, "--output", str(target)])
    if result.exit_code != 0:
        raise RuntimeError(f"exit {result.exit_code}: {result.output}")
    with target.open("rb") as output:
        lines = sum(1 for _ in output)
    return target.stat().st_size, lines


def export_by_api(app: Flask, path: str, token: str, row_start: str) -> tuple[int, int]:
    """GET the export and read the streamed body as it comes; its size and row count."""
    response = app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.get_data(True)}")
    needle = row_start.encode() or b"\n"
    size = rows = 0
    tail = b""
    for chunk in response.response:
        data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
        size += len(data)
        # A row's start may straddle two chunks: search the seam too.
        window = tail + data
        rows += window.count(needle) - tail.count(needle)
        tail = window[-len(needle) + 1 :] if len(needle) > 1 else b""
    response.close()
    return size, rows


def measure(database: Database, seeded: Seeded, export: Export) -> Result:
    result = Result(export, seeded.users)
    try:
        timed = run_child(database, seeded, export, trace=False)
        traced = run_child(database, seeded, export, trace=True)
    except RuntimeError as error:
        result.error = str(error).splitlines()[-1][:200]
        return result
    header = 1 if export.is_csv else 0
    result.rows = max(0, int(timed["lines"]) - header)
    result.bytes = int(timed["bytes"])
    result.seconds = float(timed["seconds"])
    result.rss_growth = int(timed["rss_growth"])
    result.traced_seconds = float(traced["seconds"])
    result.tracemalloc_peak = int(traced["tracemalloc_peak"])
    return result


# ----------------------------------------------------------------- report


def mib(value: int) -> str:
    return f"{value / 1_048_576:.1f}"


def markdown(results: Sequence[Result], seeds: Sequence[Seeded], facts: dict[str, str]) -> str:
    lines = ["## Export benchmark", ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    for seeded in seeds:
        lines.append(
            f"- seeded `{seeded.slug}`: {seeded.users:,} users, {seeded.events:,} audit events "
            f"in {seeded.seconds:.1f} s"
        )
    lines += [
        "",
        "| export | users | rows | output MiB | seconds | rows/s | tracemalloc peak MiB "
        "| peak RSS growth MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.export.title} | {r.users:,} | failed: {r.error} | | | | | |")
            continue
        rate = r.rows / r.seconds if r.seconds else 0.0
        lines.append(
            f"| {r.export.title} | {r.users:,} | {r.rows:,} | {mib(r.bytes)} | {r.seconds:.2f} "
            f"| {rate:,.0f} | {mib(r.tracemalloc_peak)} | {mib(r.rss_growth)} |"
        )
    lines += [
        "",
        "Each export runs twice, each time in a fresh process with the app already built and "
        "connected: timed (seconds; peak RSS growth = the highest resident memory sampled every "
        "5 ms during the export, minus the resident memory just before it), then under "
        "tracemalloc (peak of Python allocations during the export). Commands:",
        "",
    ]
    lines += [f"- {r.export.title}: {r.export.describe()}" for r in results if r.users]
    return "\n".join(lines) + "\n"


def server_version(database: Database) -> str:
    with psycopg.connect(database.conninfo) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.export_bench",
        description="Time the streamed access-review exports and measure their memory.",
    )
    parser.add_argument("--users", type=int, default=100_000, help="users in the big org")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="admin URL of the PostgreSQL server"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--output", type=Path, help="also write the Markdown table to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(list(argv))


def run(postgres: str, users: int, keep: bool = False) -> tuple[str, bool]:
    """Seed, measure every export, drop the database; the Markdown table and whether all ran."""
    database = Database(postgres, f"bench_export_{uuid.uuid4().hex[:10]}")
    log(f"creating database {database.name}")
    database.create()
    try:
        migrate.upgrade(database.url)
        rng = random.Random(20261127)
        small_users = max(1, users // 10)
        log(f"seeding {users:,} + {small_users:,} users")
        big = seed(database, "bigco", users, rng)
        small = seed(database, "smallco", small_users, rng)
        analyze(database)
        results = []
        for seeded, is_big in ((small, False), (big, True)):
            for export in exports_for(seeded, is_big):
                log(f"{seeded.users:,} users: {export.title}")
                results.append(measure(database, seeded, export))
        facts = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "python": sys.version.split()[0],
            "PostgreSQL": server_version(database),
            "CPUs": str(os.cpu_count()),
            "load average at end (1/5/15 min)": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        }
        return markdown(results, [big, small], facts), not any(r.error for r in results)
    finally:
        if keep:
            log(f"kept database {database.name}")
        else:
            database.drop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    # A terminated run still drops its database (run's finally).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    table, ok = run(args.postgres, args.users, args.keep)
    print(table)
    if args.output:
        args.output.write_text(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
