"""`blue-provisioning worker`: delivers the outbox to the webhook endpoints (and runs started
CSV import jobs a batch per pass, `app.imports`) until stopped
(SIGTERM or SIGINT: the request in flight is finished and recorded, the rest released), or
with `--once` what is due now."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click
from flask import current_app

from app.config import Settings
from app.delivery import Worker

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due, print a summary and exit.")
def worker_command(once: bool) -> None:
    """Deliver webhooks and run import jobs: until stopped, or with --once what is due now."""
    settings: Settings = current_app.extensions["settings"]
    worker = Worker(current_app.extensions["sessions"], settings)
    if once:
        click.echo(worker.run_once().summary())
        return
    _stop_on_signals(worker.stop)
    log.info("webhook worker started", extra={"worker": worker.name})
    tally = worker.run()
    click.echo(f"stopped: {tally.summary()}")


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("webhook worker stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
