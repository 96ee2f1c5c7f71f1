"""`python -m bench.ab BASELINE`: this checkout's SCIM creates and lookups against another
commit's, side by side on one machine at one time.

The speed of a shared machine drifts from minute to minute, so two runs of `python -m bench` a
few minutes apart can differ by more than a change does. Here both versions are served at once
by gunicorn with the production config, from one PostgreSQL database migrated by this checkout
(the baseline must share its schema). The client alternates blocks of requests between them,
and each side's figures are its workers' CPU per request, read from /proc, and its throughput.
The baseline is checked out with `git worktree` under var/ and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.harness import ROOT, VAR, Measurement, Postgres, process_ticks
from bench.plan import log
from bench.scim_ops import create_users, lookups, warm_up
from bench.service import RunningService, gunicorn, prepare_database

DATABASE = "bench_ab"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SEEDED = 2_000
CONCURRENCY = 4
WORKERS = 4
OPERATIONS = ("create user (POST /Users)", "lookup userName eq")


@dataclass
class Tally:
    """One side's totals for one operation over every block."""

    cpu_seconds: float = 0.0
    elapsed: float = 0.0
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, cpu_seconds: float, measured: Measurement) -> None:
        self.cpu_seconds += cpu_seconds
        self.elapsed += measured.elapsed
        self.requests += measured.items
        if measured.errors:
            self.errors.append(measured.first_error or "error")

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_seconds / self.requests if self.requests else 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


def worker_cpu_seconds(service: RunningService) -> float:
    ticks = 0
    for pid in service.process.children():
        ticks += process_ticks(pid) or 0
    return ticks / os.sysconf("SC_CLK_TCK")


def people(tag: str, start: int, count: int) -> list[tuple[str, str]]:
    return [(f"{tag}{i:06d}@example.com", f"{tag}-{i:06d}") for i in range(start, start + count)]


def block(
    service: RunningService, operation: str, tag: str, round_: int, size: int
) -> tuple[float, Measurement]:
    """`size` requests of one operation on one side; its workers' CPU seconds and the timing."""
    client = service.client
    new = people(f"{tag}-r{round_}-", 0, size)
    seeded = [f"{tag}-seed-{(round_ * size + i) % SEEDED:06d}@example.com" for i in range(size)]
    before = worker_cpu_seconds(service)
    if operation == OPERATIONS[0]:
        measured, _ = create_users(client, tag, new, CONCURRENCY)
    else:
        measured = lookups(client, tag, "userName", seeded, CONCURRENCY)
    return worker_cpu_seconds(service) - before, measured


def remove_tree(tree: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True
    )


def checkout(baseline: str) -> Path:
    """The baseline commit's work tree under var/, made afresh."""
    tree = VAR / "ab-baseline"
    remove_tree(tree)
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", "--force", str(tree), baseline],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"cannot check out {baseline!r}: {done.stderr.strip()}")
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("baseline", help="the commit to compare this checkout with")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per side and operation")
    parser.add_argument("--block", type=int, default=200, help="requests per block")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server to create it on")
    args = parser.parse_args(argv)

    postgres = Postgres(args.postgres)
    tree = checkout(args.baseline)
    try:
        database = prepare_database(postgres, DATABASE)
        sides = {"baseline": tree, "this checkout": ROOT}
        tallies = {(side, op): Tally() for side in sides for op in OPERATIONS}
        with ExitStack() as stack:
            services = {
                side: stack.enter_context(gunicorn(database, WORKERS, f"ab-{i}", code=code))
                for i, (side, code) in enumerate(sides.items())
            }
            for i, (side, service) in enumerate(services.items()):
                log(f"A/B: {side}: warming up, then {SEEDED:,} users to look up")
                warm_up(service.client, f"ab{i}", 40, CONCURRENCY)
                create_users(service.client, side, people(f"s{i}-seed-", 0, SEEDED), CONCURRENCY)
            with psycopg.connect(database.conninfo, autocommit=True) as connection:
                for table in ("users", "user_values", "audit_events"):
                    connection.execute(f"ANALYZE {table}".encode())
            for round_ in range(args.rounds):
                log(f"A/B: round {round_ + 1} of {args.rounds}")
                order = list(enumerate(services.items()))
                for operation in OPERATIONS:
                    # Each side goes first in every other round.
                    for i, (side, service) in order if round_ % 2 == 0 else order[::-1]:
                        cpu, measured = block(service, operation, f"s{i}", round_, args.block)
                        tallies[(side, operation)].add(cpu, measured)
    finally:
        remove_tree(tree)
        postgres.drop(DATABASE)

    print(
        f"\nA/B, {args.rounds} rounds of {args.block} requests per side and operation, "
        f"{CONCURRENCY} client threads, {WORKERS} gunicorn workers per side"
    )
    print("| operation | side | worker CPU per request | throughput | errors |")
    print("| --- | --- | ---: | ---: | ---: |")
    for operation in OPERATIONS:
        base = tallies[("baseline", operation)]
        for side in sides:
            tally = tallies[(side, operation)]
            change = ""
            if side != "baseline" and base.cpu_ms:
                change = f" ({100 * (tally.cpu_ms / base.cpu_ms - 1):+.0f}%)"
            print(
                f"| {operation} | {side} | {tally.cpu_ms:.2f} ms{change} | "
                f"{tally.rate:,.0f}/s | {len(tally.errors)} |"
            )
    failed = any(t.errors for t in tallies.values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
