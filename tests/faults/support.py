"""The service as it runs in production (gunicorn with deploy/gunicorn.conf.py, 2 workers) on a
database of its own, SCIM traffic from several threads, and the checks every fault test makes:
no 500, every refusal a SCIM 503 with Retry-After, every acknowledged create really stored."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text

from app import create_app, migrate
from app.config import Environment, Settings
from app.provisioning import OPERATOR, ProvisioningService, RuleSpec
from bench.harness import HttpClient, Response, ServerProcess, free_port, run_command
from scim.discovery import ERROR_SCHEMA
from tests.support import make_org

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ORG_SLUG = "acme"


@dataclass(frozen=True, slots=True)
class Served:
    """A running gunicorn on a migrated database with organization acme and its SCIM token."""

    process: ServerProcess
    database_url: str
    base_url: str
    token: str
    org_id: uuid.UUID

    def client(self) -> HttpClient:
        return HttpClient(self.base_url + "/scim/v2", self.token)

    def env(self) -> dict[str, str]:
        return service_env(self.database_url, self.base_url)


def service_env(database_url: str, base_url: str) -> dict[str, str]:
    """gunicorn's and the CLI's environment: our settings over the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUE_")}
    env.update(
        BLUE_DATABASE_URL=database_url,
        BLUE_BASE_URL=base_url,
        BLUE_LOG_LEVEL="WARNING",
        BLUE_SCIM_RATE_LIMIT="0",  # the test is one client sending as fast as it can
        BLUE_MAX_REQUESTS="0",  # no recycling: every worker restart is the test's doing
        PYTHONPATH=str(ROOT),
    )
    return env


def prepare(database_url: str) -> tuple[uuid.UUID, str]:
    """Migrate the database; create acme with a rule (a create takes a seat) and a token."""
    migrate.upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        base_url="http://localhost",
        environment=Environment.TEST,
    )
    app = create_app(settings)
    with app.app_context(), app.extensions["sessions"]() as session:
        organization, secret = make_org(session, ORG_SLUG, paid_seats=100_000)
        service = ProvisioningService(session, organization, OPERATOR)
        service.create_rule(RuleSpec("displayName", "Everyone", "team_member"))
        # The mass-grant guard would hold a group's 40 new seats: not what these tests test.
        service.set_guard_thresholds(100_000, 1.0, 1_000, window_minutes=0)
        session.commit()
        org_id = organization.id
    app.extensions["engine"].dispose()
    return org_id, secret


@contextmanager
def gunicorn(database_url: str, log_dir: Path, workers: int = 2) -> Iterator[Served]:
    """Serve a prepared database with the production gunicorn config until the block ends."""
    org_id, token = prepare(database_url)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = service_env(database_url, base_url)
    env.update(BLUE_BIND=f"127.0.0.1:{port}", BLUE_WORKERS=str(workers))
    argv = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "app:create_app()"]
    process = ServerProcess("gunicorn", argv, env, log_dir / "gunicorn.log", cwd=ROOT)
    process.start()
    try:
        process.wait_ready(HttpClient(base_url), "/readyz", timeout=60)
        yield Served(process, database_url, base_url, token, org_id)
    finally:
        process.stop()


def blue_cli(served: Served, *args: str) -> str:
    """Run `blue-provisioning` against the served database; its output (exit 0 required)."""
    return run_command([str(BIN / "blue-provisioning"), *args], served.env())


def new_user(name: str) -> dict[str, object]:
    return {"schemas": [USER_SCHEMA], "userName": name, "displayName": name}


@dataclass(slots=True)
class Traffic:
    """SCIM clients in threads: each creates a user, reads it back and lists, until stopped.

    Every answer is kept: the checks below read them all."""

    served: Served
    threads: int = 4
    answers: list[tuple[str, Response]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)

    def _keep(self, what: str, response: Response) -> Response:
        with self._lock:
            self.answers.append((what, response))
        return response

    def _run(self, n: int) -> None:
        client = self.served.client()
        i = 0
        while not self._stop.is_set():
            i += 1
            name = f"t{n}-{i}-{uuid.uuid4().hex[:6]}@acme.example"
            try:
                made = self._keep("POST /Users", client.request("POST", "/Users", new_user(name)))
                if made.status == 201:
                    with self._lock:
                        self.created.append(name)
                    path = f"/Users/{made.json()['id']}"
                    self._keep("GET /Users/id", client.request("GET", path))
                self._keep("GET /Users", client.request("GET", "/Users", query={"count": 5}))
            except Exception as error:  # the HTTP connection itself failed: a finding
                with self._lock:
                    self.failures.append(error)
                time.sleep(0.05)

    def statuses(self) -> Counter[int]:
        return Counter(response.status for _, response in self.answers)


def refusals_that_are_not_clean_503s(traffic: Traffic) -> list[str]:
    """Every answer that is neither a success nor a SCIM 503 with Retry-After, described."""
    wrong: list[str] = []
    for what, response in traffic.answers:
        if response.status < 400:
            continue
        body = response.json() if response.body.startswith(b"{") else None
        clean = (
            response.status == 503
            and response.headers.get("retry-after", "").isdigit()
            and isinstance(body, dict)
            and body.get("schemas") == [ERROR_SCHEMA]
            and body.get("status") == "503"
        )
        if not clean:
            wrong.append(f"{what}: {response.status} {response.body[:300]!r}")
    return wrong


def users_of(engine: Engine, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """The organization's stored users: user name by id."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, user_name FROM users WHERE org_id = :org"), {"org": org_id}
        )
        return {row.id: row.user_name for row in rows}


def missing_users(engine: Engine, org_id: uuid.UUID, names: list[str]) -> list[str]:
    """The names acknowledged with a 201 that the database does not hold."""
    stored = set(users_of(engine, org_id).values())
    return [name for name in names if name not in stored]


def wait_until_serving(served: Served, timeout: float = 30.0) -> float:
    """Seconds until a SCIM create succeeds again; fails after `timeout`."""
    started = time.monotonic()
    client = served.client()
    while time.monotonic() - started < timeout:
        try:
            name = f"after-{uuid.uuid4().hex[:8]}@acme.example"
            if client.request("POST", "/Users", new_user(name)).status == 201:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not serving {timeout:.0f} s later:\n{served.process.log_tail()}")
