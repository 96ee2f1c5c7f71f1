"""Our service as the bench runs it: a migrated bench database with an organization and a SCIM
token, served by gunicorn with the production config (deploy/gunicorn.conf.py)."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT, VAR, HttpClient, Postgres, ServerProcess, free_port, run_command
from bench.report import Report

BIN = Path(sys.executable).parent
ORG_SLUG = "bench"


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    name: str
    url: str
    conninfo: str
    token: str


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of the CLI and gunicorn: our settings over the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUE_")}
    env.update(
        BLUE_DATABASE_URL=database_url,
        BLUE_LOG_LEVEL="WARNING",
        # The per-token rate limiter would throttle the client this bench is.
        BLUE_SCIM_RATE_LIMIT="0",
    )
    env.update(extra)
    return env


def prepare_database(postgres: Postgres, name: str, paid_seats: int = 0) -> BenchDatabase:
    """Create, migrate and set up a bench database through the `blue-provisioning` CLI."""
    url = postgres.create(name)
    env = service_env(url)
    cli = str(BIN / "blue-provisioning")
    run_command([cli, "db", "upgrade"], env)
    run_command(
        [cli, "org", "create", "Bench Organization", "--slug", ORG_SLUG]
        + ["--paid-seats", str(paid_seats)],
        env,
    )
    output = run_command([cli, "token", "create", "--org", ORG_SLUG, "--label", "bench"], env)
    token = output.strip().splitlines()[-1].strip()
    return BenchDatabase(name=name, url=url, conninfo=postgres.conninfo(name), token=token)


def server_errors(log_path: Path) -> Counter[str]:
    """The exceptions the service logged (JSON lines with an `exception`), by their final line."""
    found: Counter[str] = Counter()
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict) or not entry.get("exception"):
            continue
        summary = "unknown"
        for text in str(entry["exception"]).splitlines():
            # The driver's error line, e.g. "psycopg.errors.DeadlockDetected: deadlock detected".
            if text and not text.startswith((" ", "[", "(Background", "The above", "Traceback")):
                summary = text.strip()[:200]
                if "errors." in text or "exc." in text:
                    break
        found[summary] += 1
    return found


def report_server_errors(report: Report, part: str, log_path: Path) -> None:
    """Name the exceptions behind any HTTP 500, from the service's own log."""
    for summary, count in server_errors(log_path).most_common():
        report.problems.append(f"{part}: the service logged {count} × `{summary}`")


@dataclass(frozen=True, slots=True)
class RunningService:
    process: ServerProcess
    base_url: str
    client: HttpClient
    workers: int


@contextmanager
def gunicorn(
    database: BenchDatabase, workers: int, label: str, code: Path = ROOT
) -> Iterator[RunningService]:
    """Serve the bench database with gunicorn on a free loopback port until the block ends.

    `code`: the checkout whose application is served (another commit's work tree for an A/B).
    """
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    env = service_env(
        database.url,
        BLUE_BIND=f"127.0.0.1:{port}",
        BLUE_BASE_URL=root,
        BLUE_WORKERS=str(workers),
        # No recycling during the run: a recycled worker would reset the memory being watched.
        BLUE_MAX_REQUESTS="0",
        # Ahead of the virtualenv's editable install of this checkout.
        PYTHONPATH=str(code),
    )
    argv = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "app:create_app()"]
    process = ServerProcess(
        f"gunicorn ({label})", argv, env, VAR / f"gunicorn-{label}.log", cwd=code
    )
    process.start()
    try:
        process.wait_ready(HttpClient(root), "/readyz")
        client = HttpClient(root + "/scim/v2", database.token)
        yield RunningService(process, root, client, workers)
    finally:
        process.stop()
