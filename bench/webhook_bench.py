"""`python -m bench.webhook_bench`: Blue hears of every change, measured end to end.

One bench database served by gunicorn with the production config, a webhook endpoint on a real
HTTP receiver on 127.0.0.1, and two `blue-provisioning worker` processes sharing the outbox:

- **drain**: users are created while no worker runs; then both workers start, and the rate at
  which the backlog of events reaches the receiver is the delivered events per second;
- **deprovisioning under load**: SCIM deactivations paced at `--rate` per second; for each, the
  time from the SCIM response (the change is committed) to the moment its event reaches the
  receiver. Target: p99 under 5 s at 200 changes per second.

The SCIM create rate with the outbox on against a commit without it is `python -m bench.ab`'s
job (both served at once); bench/RESULTS.md records both.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.harness import VAR, HttpClient, Postgres, ServerProcess, percentile, run_command
from bench.plan import log
from bench.scim_ops import create_users, patch
from bench.service import BIN, ORG_SLUG, BenchDatabase, prepare_database, service_env
from bench.service import gunicorn as serve

DATABASE = "bench_webhooks"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEACTIVATED = "user.deactivated"
TARGET_P99_SECONDS = 5.0


@dataclass
class Arrivals:
    """What the receiver got: each event's id, type and subject user, and when it arrived."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: list[tuple[float, str, str, str | None]] = field(default_factory=list)

    def add(self, event_id: str, body: dict[str, Any]) -> None:
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        user = data.get("user_id") if isinstance(data, dict) else None
        with self.lock:
            self.events.append((time.monotonic(), event_id, str(body.get("type")), user))

    def distinct(self) -> int:
        with self.lock:
            return len({event_id for _, event_id, _, _ in self.events})

    def first_of(self, kind: str) -> dict[str, float]:
        """When the first event of this type arrived, by subject user."""
        found: dict[str, float] = {}
        with self.lock:
            for at, _, type_, user in self.events:
                if type_ == kind and user is not None:
                    found.setdefault(user, at)
        return found


@contextmanager
def receiver(arrivals: Arrivals) -> Iterator[str]:
    """A webhook receiver on a free loopback port that answers 204 to everything."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                arrivals.add(self.headers.get("webhook-id", ""), json.loads(body))
            except ValueError:
                pass
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/blue"
    finally:
        server.shutdown()
        server.server_close()


def start_workers(database: BenchDatabase, count: int, stack: ExitStack) -> None:
    """`count` delivery workers on the bench database, stopped (SIGTERM) when `stack` closes."""
    for number in range(count):
        process = ServerProcess(
            f"worker {number + 1}",
            [str(BIN / "blue-provisioning"), "worker"],
            service_env(database.url),
            VAR / f"webhook-worker-{number + 1}.log",
        )
        process.start()
        stack.callback(process.stop)


def wait_for(arrivals: Arrivals, count: int, timeout: float) -> float:
    """Seconds until `count` distinct events arrived (or the timeout passed)."""
    started = time.monotonic()
    while arrivals.distinct() < count and time.monotonic() - started < timeout:
        time.sleep(0.05)
    return time.monotonic() - started


def paced_deactivations(
    client: HttpClient, user_ids: Sequence[str], rate: float
) -> tuple[dict[str, float], int]:
    """PATCH active=false for each user, one every 1/rate s; when each response came back."""
    answered: dict[str, float] = {}
    lock = threading.Lock()
    errors = 0
    start = time.monotonic() + 0.2

    def deactivate(index: int) -> None:
        nonlocal errors
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        user_id = user_ids[index]
        body = patch({"op": "replace", "path": "active", "value": False})
        response = client.request("PATCH", f"/Users/{user_id}", body)
        with lock:
            if response.status == 200:
                answered[user_id] = time.monotonic()
            else:
                errors += 1

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(deactivate, range(len(user_ids))))
    return answered, errors


def run(args: argparse.Namespace) -> dict[str, float]:
    """The two measurements, as figures for the report."""
    postgres = Postgres(args.postgres)
    arrivals = Arrivals()
    figures: dict[str, float] = {}
    try:
        database = prepare_database(postgres, DATABASE)
        with receiver(arrivals) as url, serve(database, args.web_workers, "webhooks") as service:
            cli = str(BIN / "blue-provisioning")
            run_command(
                [cli, "webhook", "add", "--org", ORG_SLUG, "--url", url],
                service_env(database.url),
            )
            people = [(f"w{i}@bench.example", f"w-{i}") for i in range(args.users)]
            log(f"webhooks: creating {args.users:,} users with no worker running")
            _, ids = create_users(service.client, "webhooks", people, 8)
            with ExitStack() as workers:
                start_workers(database, args.workers, workers)
                seconds = wait_for(arrivals, args.users, timeout=600)
                figures["drained_events"] = arrivals.distinct()
                figures["drain_events_per_second"] = arrivals.distinct() / seconds
                log(f"webhooks: deactivating at {args.rate:g}/s for {len(ids) / args.rate:.0f} s")
                answered, errors = paced_deactivations(service.client, ids, args.rate)
                wait_for(arrivals, 2 * args.users, timeout=120)
            delivered = arrivals.first_of(DEACTIVATED)
            latencies = sorted(
                max(0.0, delivered[user] - at) for user, at in answered.items() if user in delivered
            )
            figures["deactivations"] = len(answered)
            figures["deactivation_errors"] = errors
            figures["deactivations_delivered"] = len(latencies)
            figures["latency_p50"] = percentile(latencies, 0.50)
            figures["latency_p99"] = percentile(latencies, 0.99)
    finally:
        postgres.drop_all()
    return figures


def render(args: argparse.Namespace, figures: dict[str, float]) -> str:
    """The figures as a Markdown section, with the command that produced them."""
    p99 = figures["latency_p99"]
    verdict = "PASS" if p99 < TARGET_P99_SECONDS and figures["deactivation_errors"] == 0 else "FAIL"
    return "\n".join(
        [
            "## Webhooks: delivery and deprovisioning latency",
            "",
            f"`python -m bench.webhook_bench --users {args.users} --rate {args.rate:g} "
            f"--workers {args.workers}`",
            "",
            "| measure | value |",
            "| --- | ---: |",
            f"| backlog drained by {args.workers} workers | "
            f"{figures['drained_events']:,.0f} events at "
            f"{figures['drain_events_per_second']:,.1f} events/s |",
            f"| SCIM deactivations at {args.rate:g}/s | {figures['deactivations']:,.0f} "
            f"({figures['deactivation_errors']:.0f} errors), "
            f"{figures['deactivations_delivered']:,.0f} delivered |",
            f"| response → delivery p50 | {figures['latency_p50'] * 1000:,.0f} ms |",
            f"| response → delivery p99 (target < {TARGET_P99_SECONDS:g} s) | "
            f"{p99 * 1000:,.0f} ms **{verdict}** |",
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print and write the section; exit 1 when the latency target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_bench", description=__doc__)
    parser.add_argument("--users", type=int, default=3000, help="users created, then deactivated")
    parser.add_argument("--rate", type=float, default=200.0, help="deactivations per second")
    parser.add_argument("--workers", type=int, default=2, help="delivery worker processes")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--results", type=Path, default=VAR / "RESULTS-webhooks.md")
    args = parser.parse_args(argv)
    figures = run(args)
    section = render(args, figures)
    print(section)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(section)
    return 0 if figures["latency_p99"] < TARGET_P99_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
