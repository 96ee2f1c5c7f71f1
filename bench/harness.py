"""Measurement tools: latency statistics, a concurrent HTTP client, child servers, worker memory
and the bench databases. Nothing here knows about SCIM."""

from __future__ import annotations

import gc
import http.client
import json
import math
import os
import platform
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import psycopg
from sqlalchemy.engine import make_url

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"


# ------------------------------------------------------------------ statistics


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class Measurement:
    """One timed operation: per-request latencies (seconds) and the wall time of the whole run."""

    scenario: str
    operation: str
    latencies: list[float]
    elapsed: float
    # Units of work done (requests, users, members): throughput is items / elapsed.
    items: int
    unit: str = "req"
    errors: int = 0
    concurrency: int = 1
    note: str = ""
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.elapsed if self.elapsed > 0 else 0.0

    def ms(self, fraction: float) -> float:
        return percentile(sorted(self.latencies), fraction) * 1000

    @property
    def p50(self) -> float:
        return self.ms(0.50)

    @property
    def p95(self) -> float:
        return self.ms(0.95)

    @property
    def p99(self) -> float:
        return self.ms(0.99)

    @property
    def mean_ms(self) -> float:
        return sum(self.latencies) / len(self.latencies) * 1000 if self.latencies else 0.0


# ------------------------------------------------------------------------ HTTP


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class HttpClient:
    """A small HTTP/1.1 client with one connection per thread, reused while the server keeps it
    open, as an IdP's client does (gunicorn's gthread workers keep it; sync workers and wsgiref
    close it after each response, and then http.client reconnects).
    """

    def __init__(self, base_url: str, token: str | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.headers = {"Accept": "application/scim+json, application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self._local.connection = connection
        return connection

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, str | int] | None = None,
    ) -> Response:
        url = self.prefix + path
        if query:
            url += "?" + urlencode(query)
        headers = dict(self.headers)
        payload: bytes | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/scim+json"
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, url, body=payload, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
            except Exception as error:
                # Whatever went wrong, this connection is unusable now.
                connection.close()
                self._local.connection = None
                retry = isinstance(
                    error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                )
                # A kept-alive connection the server closed meanwhile: retry once on a new one.
                if retry and attempt == 1:
                    continue
                raise
            if answer.will_close:
                connection.close()
            return Response(answer.status, data, {k.lower(): v for k, v in answer.getheaders()})
        raise AssertionError("unreachable")


def freeze_garbage() -> None:
    """Hide what the bench holds for the whole run (100,000 seeded ids) from the cyclic
    collector, so that a full collection in the bench's own process, which measures every
    latency, does not pause in the middle of a timed request."""
    gc.collect()
    gc.freeze()


def timed_runs(
    scenario: str,
    operation: str,
    tasks: Sequence[T],
    run: Callable[[T], str | None],
    concurrency: int = 1,
    unit: str = "req",
    items_per_task: int = 1,
    note: str = "",
) -> Measurement:
    """Run `run` over `tasks` on `concurrency` threads, timing each call.

    `run` returns None on success and a short description of what went wrong otherwise.
    """
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def timed(task: T) -> None:
        started = time.perf_counter()
        try:
            problem = run(task)
        except Exception as error:  # a crashed request counts as an error, the run goes on
            problem = f"{type(error).__name__}: {error}"
        took = time.perf_counter() - started
        with lock:
            latencies.append(took)
            if problem is not None:
                errors.append(problem)

    started = time.perf_counter()
    if concurrency <= 1:
        for task in tasks:
            timed(task)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(timed, tasks))
    elapsed = time.perf_counter() - started
    return Measurement(
        scenario=scenario,
        operation=operation,
        latencies=latencies,
        elapsed=elapsed,
        items=len(tasks) * items_per_task,
        unit=unit,
        errors=len(errors),
        concurrency=concurrency,
        note=note,
        first_error=errors[0] if errors else "",
    )


def expect(response: Response, *statuses: int) -> str | None:
    """None when the response has one of the statuses, else a description for the report."""
    if response.status in statuses:
        return None
    return f"HTTP {response.status}: {response.body[:300].decode(errors='replace')}"


# ------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """A server this bench started: its output goes to a log file under var/bench/."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_ready(self, client: HttpClient, path: str, timeout: float = 60.0) -> None:
        """Poll `path` until it answers 200; fail with the log's tail if the server dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                if client.request("GET", path).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM this process (gunicorn's master stops its workers), SIGKILL if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def children(self) -> list[int]:
        """Pids of this process's direct children (gunicorn's workers)."""
        return child_pids(self.pid)


def child_pids(parent: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name sits in parentheses and may contain spaces: split after it.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int | None:
    """Resident set size from /proc/<pid>/status (VmRSS, KiB), None if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Repeating:
    """Calls `action` on a daemon thread at once, then every `interval` seconds until stop()."""

    def __init__(self, name: str, interval: float, action: Callable[[], object]) -> None:
        self._interval = interval
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._action()
            self._stop.wait(self._interval)

    def stop(self) -> None:
        """Ask the thread to finish and wait until its current call has returned."""
        self._stop.set()
        self._thread.join()


@dataclass
class RssSampler:
    """Samples the RSS of a set of pids on a background thread."""

    pids: Sequence[int]
    interval: float = 0.2
    samples: list[dict[int, int]] = field(default_factory=list)
    _sampling: Repeating | None = None

    def snapshot(self) -> dict[int, int]:
        return {pid: kib for pid in self.pids if (kib := rss_kib(pid)) is not None}

    def __enter__(self) -> RssSampler:
        self._sampling = Repeating(
            "rss-sampler", self.interval, lambda: self.samples.append(self.snapshot())
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampling is not None:
            self._sampling.stop()

    def peak(self) -> dict[int, int]:
        peaks: dict[int, int] = {}
        for sample in self.samples:
            for pid, kib in sample.items():
                peaks[pid] = max(peaks.get(pid, 0), kib)
        return peaks


def _machine_busy_ticks() -> int:
    """Clock ticks all CPUs spent not idle since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user time.
    return sum(fields[:8]) - idle


def process_ticks(pid: int) -> int | None:
    """Clock ticks a process has spent on a CPU (user + system), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _postgres_backends(databases: Sequence[str]) -> list[int]:
    """Server processes serving one of these databases (their title names the database)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and any(f" {db} " in title for db in databases):
            found.append(int(entry.name))
    return found


@dataclass
class CpuAccount:
    """How busy the machine was during a part, and how much of that was this bench: the bench
    process and everything it started (reaped), plus PostgreSQL's sessions on its databases."""

    databases: Sequence[str]
    interval: float = 0.5
    _began: float = 0.0
    _busy: int = 0
    _own: float = 0.0
    _backends: dict[int, tuple[int, int]] = field(default_factory=dict)
    _sampling: Repeating | None = None

    def _sample_backends(self) -> None:
        for pid in _postgres_backends(self.databases):
            ticks = process_ticks(pid)
            if ticks is None:
                continue
            first, _ = self._backends.get(pid, (ticks, ticks))
            self._backends[pid] = (first, ticks)

    def __enter__(self) -> CpuAccount:
        self._began = time.monotonic()
        self._busy = _machine_busy_ticks()
        times = os.times()
        self._own = times.user + times.system + times.children_user + times.children_system
        self._sampling = Repeating("cpu-account", self.interval, self._sample_backends)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sampling is not None:
            self._sampling.stop()
        self._sample_backends()
        self.wall = time.monotonic() - self._began
        tick = os.sysconf("SC_CLK_TCK")
        self.machine_cpu = (_machine_busy_ticks() - self._busy) / tick
        times = os.times()
        own = times.user + times.system + times.children_user + times.children_system
        sessions = sum(last - first for first, last in self._backends.values()) / tick
        self.own_cpu = own - self._own + sessions

    def summary(self, cpus: int) -> str:
        capacity = self.wall * max(cpus, 1)
        others = max(0.0, self.machine_cpu - self.own_cpu)
        return (
            f"over {self.wall:.0f} s the {cpus} CPUs were {self.machine_cpu / capacity:.0%} busy: "
            f"this bench (client, servers, its PostgreSQL sessions) {self.own_cpu / capacity:.0%}, "
            f"other processes (including PostgreSQL's background work) {others / capacity:.0%}"
        )


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Run a command to completion; its stdout, or an error carrying its output."""
    done = subprocess.run(list(argv), cwd=ROOT, env=dict(env), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


# ------------------------------------------------------------------- databases


class Postgres:
    """The PostgreSQL server the bench creates its databases on (and drops them from)."""

    def __init__(self, admin_url: str) -> None:
        url = make_url(admin_url)
        if url.get_backend_name() != "postgresql":
            raise SystemExit(f"--postgres must be a postgresql:// URL, got {admin_url!r}")
        self.admin_url = url.set(drivername="postgresql+psycopg")
        self.created: list[str] = []

    def app_url(self, database: str) -> str:
        """SQLAlchemy URL of one bench database, as BLUE_DATABASE_URL takes it."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def conninfo(self, database: str | None = None) -> str:
        """libpq URL (psycopg) of a bench database, or of the admin database."""
        url = self.admin_url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            connection.execute(statement.encode())

    def create(self, database: str) -> str:
        """A fresh empty database (an old one of that name is dropped); its app URL."""
        self.drop(database)
        self._admin(f'CREATE DATABASE "{database}"')
        self.created.append(database)
        return self.app_url(database)

    def drop(self, database: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if database in self.created:
            self.created.remove(database)

    def drop_all(self) -> None:
        for database in list(self.created):
            self.drop(database)

    def version(self) -> str:
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            row = connection.execute(b"SELECT version()").fetchone()
        return str(row[0]) if row else "unknown"

    def settings(self, names: Iterable[str]) -> dict[str, str]:
        with psycopg.connect(self.conninfo(), autocommit=True) as connection:
            return {
                name: str(row[0])
                for name in names
                if (row := connection.execute(f"SHOW {name}".encode()).fetchone())
            }


def copy_rows(
    cursor: psycopg.Cursor[Any], statement: str, rows: Iterable[Sequence[object]]
) -> None:
    """Stream `rows` into a table through `statement`, a `COPY ... FROM STDIN`."""
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


# ---------------------------------------------------------------------- machine


def load_average() -> str:
    """Other work on the machine skews every figure: record how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def code_revision() -> str:
    """The commit measured, and whether the service's code had uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "log", "-1", "--format=%h %s"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "app", "scim", "sso", "licensing", "deploy"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    if dirty:
        return f"commit {commit} + uncommitted changes in {len(dirty)} files"
    return f"commit {commit}"


def machine_facts(postgres: Postgres) -> dict[str, str]:
    """What the figures depend on: CPUs, memory, PostgreSQL and Python versions."""
    facts: dict[str, str] = {}
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    facts["nproc"] = str(cpus)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                facts["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    facts["kernel"] = platform.release()
    facts["load average at start (1/5/15 min)"] = load_average()
    facts["code"] = code_revision()
    facts["python"] = platform.python_version()
    facts["postgresql"] = postgres.version()
    shown = postgres.settings(["shared_buffers", "work_mem", "synchronous_commit", "fsync"])
    facts["postgresql settings"] = ", ".join(f"{k}={v}" for k, v in shown.items())
    return facts
