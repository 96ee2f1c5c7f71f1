"""B. Side by side with the python-scim reference server (scim2-server, in-memory, werkzeug/wsgiref)
at the reference's scale: the same client and requests against both servers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.harness import ROOT, VAR, HttpClient, Measurement, Postgres, ServerProcess, free_port
from bench.plan import Plan, log
from bench.report import Report, ratio
from bench.scim_ops import (
    NO_WORK,
    GroupUnderTest,
    batch_add,
    create_group,
    create_users,
    lookups,
    requests_doing_nothing,
    single_member_patches,
    warm_up,
)
from bench.service import gunicorn, prepare_database, report_server_errors

REFERENCE_PACKAGE = "scim2-server"
REFERENCE_VERSION = "0.8.3"
# The reference gets its own virtualenv: it must not leak into the project's dependencies.
REFERENCE_VENV = ROOT / "var" / "bench-venv"
DATABASE = "bench_small"
RATE_RATIO = 1.5
WARM_UP_REQUESTS = 40


def ensure_reference_server() -> Path:
    """The scim2-server executable, installing it into var/bench-venv from PyPI when missing."""
    executable = REFERENCE_VENV / "bin" / "scim2-server"
    marker = REFERENCE_VENV / f".installed-{REFERENCE_PACKAGE}-{REFERENCE_VERSION}"
    if executable.exists() and marker.exists():
        return executable
    python = REFERENCE_VENV / "bin" / "python"
    if not python.exists():
        log(f"B: creating {REFERENCE_VENV.relative_to(ROOT)}")
        subprocess.run([sys.executable, "-m", "venv", str(REFERENCE_VENV)], check=True)
    log(f"B: installing {REFERENCE_PACKAGE}=={REFERENCE_VERSION} into the bench venv")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"{REFERENCE_PACKAGE}=={REFERENCE_VERSION}"], check=True)
    marker.touch()
    return executable


def comparison(
    client: HttpClient,
    scenario: str,
    users: int,
    iterations: int,
    concurrency: int,
    after_creates: Callable[[], None] | None = None,
) -> list[Measurement]:
    """Requests that do no work, creates, lookups by userName, filling one group, and
    single-member PATCHes on a group of every user vs a group of ten: the same requests
    whichever server answers."""
    warm_up(client, "b", WARM_UP_REQUESTS, concurrency)
    idle = requests_doing_nothing(client, scenario, users, concurrency)
    people = [(f"ref{i:06d}@example.com", f"ref-{i:06d}") for i in range(users)]
    created, ids = create_users(client, scenario, people, concurrency)
    if created.errors:
        raise RuntimeError(f"{scenario}: creates failed: {created.first_error}")
    _, movers = create_users(
        client, "setup", [("mover-a@example.com", "mover-a"), ("mover-b@example.com", "mover-b")], 1
    )
    if after_creates is not None:
        after_creates()
    # Every user looked up once, in a shuffled order.
    order = sorted(range(users), key=lambda i: (i * 7919) % users)
    found = lookups(client, scenario, "userName", [people[i][0] for i in order], concurrency)
    ten = create_group(client, "Ten People", ids[:10])
    everyone = create_group(client, "Everyone")
    filled = batch_add(client, scenario, everyone, ids)
    singles = single_member_patches(
        client,
        scenario,
        [
            GroupUnderTest(f"{users:,}-member group", everyone, movers[0]),
            GroupUnderTest("10-member group", ten, movers[1]),
        ],
        iterations,
    )
    return [idle, created, found, filled, *singles]


def run_reference(postgres: Postgres, plan: Plan, report: Report) -> None:
    """Run the comparison on the reference server, then on ours at the same scale."""
    users = plan.reference_users
    executable = ensure_reference_server()
    reference_scenario = f"B. reference {REFERENCE_PACKAGE} {REFERENCE_VERSION}, {users:,} users"
    ours_scenario = f"B. our service, {users:,} users"

    token = secrets.token_urlsafe(24)
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    server = ServerProcess(
        "scim2-server",
        [str(executable), "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", token],
        dict(os.environ),
        VAR / "scim2-server.log",
    )
    log(f"B: reference server on {root}")
    server.start()
    try:
        client = HttpClient(root, token)
        server.wait_ready(client, "/ServiceProviderConfig")
        report.measurements += comparison(
            client, reference_scenario, users, plan.reference_iterations, plan.concurrency
        )
    finally:
        server.stop()

    log(f"B: our service on a fresh database, {users:,} users")
    database = prepare_database(postgres, DATABASE)
    with gunicorn(database, plan.workers, "small") as service:
        report.measurements += comparison(
            service.client,
            ours_scenario,
            users,
            plan.reference_iterations,
            plan.concurrency,
            after_creates=lambda: analyze(database.conninfo),
        )
    report.notes.append(
        "B: our database is ANALYZEd after the creates, as autovacuum does within a minute of a "
        "table growing from empty; without statistics PostgreSQL answers a userName lookup by "
        "walking the whole table in creation order."
    )
    report_server_errors(report, "B", service.process.log_path)
    postgres.drop(DATABASE)
    check_targets(report, reference_scenario, ours_scenario, users)


def analyze(conninfo: str) -> None:
    """Give the planner statistics of the tables the creates filled."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for table in ("users", "user_values", "audit_events"):
            connection.execute(f"ANALYZE {table}".encode())


def rate_targets(report: Report, reference: str, ours: str, compared: str) -> None:
    """Creates and lookups in scenario `ours` at RATE_RATIO× or more of `reference`'s rate."""
    for operation in ("create user (POST /Users)", "lookup userName eq"):
        theirs = report.find(reference, operation)
        mine = report.find(ours, operation)
        if theirs is None or mine is None:
            continue
        times = ratio(mine.rate, theirs.rate)
        report.target(
            f"{operation}: {compared}",
            f"≥ {RATE_RATIO}× the reference's rate",
            f"{mine.rate:,.0f}/s vs {theirs.rate:,.0f}/s = {times:.2f}×",
            times >= RATE_RATIO and mine.errors == 0,
        )


def check_targets(report: Report, reference: str, ours: str, users: int) -> None:
    rate_targets(report, reference, ours, f"ours vs reference at {users:,} users")
    idle = report.find(ours, NO_WORK)
    for operation in ("create user (POST /Users)", "lookup userName eq"):
        theirs = report.find(reference, operation)
        if idle is not None and theirs is not None and idle.rate:
            wanted = RATE_RATIO * theirs.rate
            report.notes.append(
                f"B: {RATE_RATIO}× the reference's {operation} is {wanted:,.0f}/s, "
                f"{wanted / idle.rate:.0%} of the {idle.rate:,.0f}/s at which our service "
                "answers an authenticated request that does no work."
            )
    for name in (reference, ours):
        big = report.find(name, f"1-member PATCH add, {users:,}-member group")
        small = report.find(name, "1-member PATCH add, 10-member group")
        if big is not None and small is not None:
            report.notes.append(
                f"{name}: single-member PATCH add p50 {small.p50:.1f} ms on a 10-member group, "
                f"{big.p50:.1f} ms on a {users:,}-member group."
            )
