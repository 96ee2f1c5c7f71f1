"""A gunicorn worker SIGKILLed in the middle of a group PATCH (issue #16 item 13): the change
had written its memberships, roles, seats and audit events and was about to seal them when the
worker died. PostgreSQL rolls the open transaction back, so the database holds none of it: the
audit chain verifies, no user's roles drift from the rules, no seat was taken. The arbiter
starts a new worker, and the same PATCH sent again applies whole."""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from app import audit, create_app, reporting
from app.config import Environment, Settings
from app.db import make_engine, read_only_unit
from app.organizations import get_organization
from app.provisioning import OPERATOR, ProvisioningService
from tests.faults.support import ORG_SLUG, PATCH_SCHEMA, Served, blue_cli, new_user

GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MEMBERS = 40

# The PATCH's backend, blocked on the audit chain's head (the last lock before COMMIT), and
# whether it has written anything yet (a transaction id is taken at the first write).
WAITING_WRITER = text(
    "SELECT a.client_port, a.backend_xid IS NOT NULL AS has_written "
    "FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
    "WHERE NOT l.granted AND a.datname = current_database() LIMIT 1"
)


def scim(served: Served, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request on a connection of its own, never retried (a dead worker is an error)."""
    connection = http.client.HTTPConnection("127.0.0.1", int(served.base_url.rsplit(":", 1)[1]))
    headers = {"Authorization": f"Bearer {served.token}"}
    if body is not None:
        headers["Content-Type"] = "application/scim+json"
    try:
        data = json.dumps(body) if body is not None else None
        connection.request(method, "/scim/v2" + path, body=data, headers=headers)
        answer = connection.getresponse()
        raw = answer.read()
        return answer.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def worker_with_local_port(workers: list[int], port: int) -> int:
    """The worker whose TCP socket has this local port (the database backend's client_port)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker of {workers} holds local port {port}")


def wait_for_writer(connection: Connection, timeout: float = 10.0) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = connection.execute(WAITING_WRITER).first()
        if row is not None:
            return int(row.client_port), bool(row.has_written)
        time.sleep(0.02)
    raise AssertionError("the PATCH never reached the audit chain's head")


def consistent(served: Served) -> dict[str, Any]:
    """What an operator checks: the audit chain verifies and no user's roles drift from the
    rules (memberships, roles and events agree); the seat counts, by kind."""
    settings = Settings(
        database_url=served.database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        base_url=served.base_url,
        environment=Environment.TEST,
    )
    app = create_app(settings)
    with app.app_context(), read_only_unit() as session:
        organization = get_organization(session, ORG_SLUG)
        verified = audit.verify(session, organization.id)
        assert verified.is_ok, verified
        assert list(ProvisioningService(session, organization, OPERATOR).drift()) == []
        seats: dict[str, Any] = reporting.seat_summary(session, organization).as_json()
    app.extensions["engine"].dispose()
    return seats


@pytest.mark.postgresql_only
def test_a_worker_killed_mid_patch_leaves_none_of_it_and_is_replaced(served: Served) -> None:
    ids = [
        scim(served, "POST", "/Users", new_user(f"u{n}@acme.example"))[1]["id"]
        for n in range(MEMBERS)
    ]
    status, group = scim(
        served, "POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "Everyone"}
    )
    assert status == 201, group
    before = consistent(served)
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }
    outcome: list[BaseException | tuple[int, Any]] = []

    def send() -> None:
        try:
            outcome.append(scim(served, "PATCH", f"/Groups/{group['id']}", patch))
        except (http.client.HTTPException, OSError) as error:
            outcome.append(error)

    engine = make_engine(served.database_url)
    workers = served.process.children()
    with engine.connect() as holder, engine.connect() as watcher:
        holder.execute(
            text("SELECT 1 FROM audit_heads WHERE chain = :chain FOR UPDATE"),
            {"chain": str(served.org_id)},
        )
        sender = threading.Thread(target=send)
        sender.start()
        port, has_written = wait_for_writer(watcher)
        assert has_written  # memberships, roles, seats and events were written, not committed
        victim = worker_with_local_port(workers, port)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        sender.join(30)
        holder.rollback()
    assert len(outcome) == 1 and isinstance(outcome[0], BaseException), outcome
    engine.dispose()

    assert consistent(served) == before  # none of the change
    status, unchanged = scim(served, "GET", f"/Groups/{group['id']}")
    assert status == 200 and not unchanged.get("members")
    while len(served.process.children()) < len(workers) and time.monotonic() < killed_at + 30:
        time.sleep(0.1)
    replaced_after = time.monotonic() - killed_at
    print(f"\nworker {victim} killed mid-PATCH; a new one {replaced_after:.1f} s later")
    assert victim not in served.process.children()
    assert len(served.process.children()) == len(workers)  # the arbiter replaced it
    status, body = scim(served, "PATCH", f"/Groups/{group['id']}", patch)
    assert status in (200, 204), body
    status, patched = scim(served, "GET", f"/Groups/{group['id']}")
    assert len(patched["members"]) == MEMBERS  # the whole change, once sent again
    after = consistent(served)
    assert after != before  # the seats were taken this time
    assert blue_cli(served, "audit", "verify", "--org", ORG_SLUG).startswith("OK")
