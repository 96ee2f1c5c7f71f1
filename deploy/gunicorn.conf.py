"""Gunicorn settings for the Blue provisioning service.

Run with ``gunicorn -c deploy/gunicorn.conf.py "app:create_app()"``. Every tunable is read from a
``BLUE_*`` environment variable, so the same file serves a laptop, Compose and Kubernetes; see
deploy/README.md for the table. Gunicorn applies the module-level names that match its settings
and ignores the rest, so helpers here start with an underscore.
"""

import gc
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gunicorn import util
from gunicorn.glogging import Logger, SafeAtoms
from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

# Each worker holds its own database connection pool: the cap keeps the default connection count
# (instances x workers x pool size) predictable on large machines. BLUE_WORKERS overrides it.
_MAX_DEFAULT_WORKERS = 8


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    """Read an integer setting, failing startup with a readable message when it is malformed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


def _cgroup_cpu_limit() -> int | None:
    """Whole CPUs allowed by the container's cgroup CPU quota, or None when there is no quota."""
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return None if quota == "max" else math.ceil(int(quota) / int(period))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: a quota of -1 means unlimited
        quota_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period_us = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else math.ceil(quota_us / period_us)
    except (OSError, ValueError):
        return None


def _available_cpus() -> int:
    """CPUs this process may use: its affinity mask, narrowed by a container CPU limit."""
    # os.cpu_count() reports the host's CPUs even inside a container limited to one.
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no sched_getaffinity
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(cpus, limit) if limit is not None else cpus)


class _JsonSafeAtoms(SafeAtoms):  # type: ignore[misc]  # gunicorn ships no type information
    """Access-log values escaped for a JSON string, so a hostile path or header can't break a line.

    Gunicorn's own SafeAtoms escapes only double quotes; a backslash in a User-Agent or a %0A in a
    path would still corrupt the JSON line.
    """

    def __init__(self, atoms: dict[str, Any]) -> None:
        dict.__init__(self)
        for key, value in atoms.items():
            if isinstance(value, str):
                self[key] = json.dumps(value)[1:-1]
            elif value is None:
                self[key] = "null"
            else:
                self[key] = value


class JsonAccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type information
    """Gunicorn logger whose access lines are JSON objects with an ISO 8601 UTC time."""

    atoms_wrapper_class = _JsonSafeAtoms

    def now(self) -> str:
        return datetime.now(UTC).isoformat(timespec="milliseconds")


# The request line gunicorn reads at most (method, URI and version): its own maximum. A SCIM
# filter may be 4096 characters (scim/filter_parser.py), three times that percent-encoded;
# past this limit the client is told to send it in a POST /.search body (_LongLineRefused).
# 0 would lift the limit, and with it the bound on what one request line holds in memory.
limit_request_line = 8190
_TOO_LONG = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
    "status": "414",
    "detail": (
        f"the request line is longer than {limit_request_line} bytes: send a long filter "
        "in the body of POST /scim/v2/Users/.search (or /Groups/.search, /.search)"
    ),
}


class _LongLineRefused:
    """Answers a request line past limit_request_line with a SCIM error (RFC 7644 §3.12) in
    JSON, where gunicorn writes an HTML page: the URI was never read, so its path is unknown,
    and the API most queried by GET with long filters is SCIM. Other parse errors (a malformed
    line or header) keep gunicorn's answer."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, LimitRequestLine):
            super().handle_error(req, client, addr, exc)  # type: ignore[misc]
            return
        body = json.dumps(_TOO_LONG).encode()
        head = (
            "HTTP/1.1 414 URI Too Long\r\nConnection: close\r\n"
            f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except OSError:  # the client went away
            pass


class ScimThreadWorker(_LongLineRefused, ThreadWorker):  # type: ignore[misc]
    pass


class ScimSyncWorker(_LongLineRefused, SyncWorker):  # type: ignore[misc]
    pass


wsgi_app = "app:create_app()"
proc_name = "blue-provisioning"

# --- sockets and workers -------------------------------------------------------------------------
bind = [
    address.strip()
    for address in os.environ.get("BLUE_BIND", "127.0.0.1:8000").split(",")
    if address.strip()
]
workers = _env_int("BLUE_WORKERS", min(2 * _available_cpus() + 1, _MAX_DEFAULT_WORKERS), 1)
# Threads > 1 switch to gthread, the default: a request mostly waits on PostgreSQL, and gthread
# keeps an identity provider's connection alive between requests where a sync worker closes it
# after each response (a new TCP connection per SCIM call cost about a quarter of a lookup's
# time in bench/). Each thread may hold a database connection at once, so the application's
# pool size must be at least BLUE_THREADS.
threads = _env_int("BLUE_THREADS", 4, 1)
worker_class = ScimThreadWorker if threads > 1 else ScimSyncWorker
# The application object is built in each worker after fork: a preloaded SQLAlchemy engine would
# hand the same pooled sockets to every worker.
preload_app = False

# --- timeouts and recycling ----------------------------------------------------------------------
timeout = _env_int("BLUE_TIMEOUT", 30, 1)
graceful_timeout = _env_int("BLUE_GRACEFUL_TIMEOUT", 30, 1)
# Sync workers close every connection after one response; this applies to gthread only. Behind a
# load balancer that reuses upstream connections, keep it above the balancer's idle timeout.
keepalive = _env_int("BLUE_KEEPALIVE", 5, 0)
# Recycle workers now and then so a slow leak in a C extension (lxml, xmlsec) can't grow forever;
# the jitter keeps all workers from restarting at the same moment.
max_requests = _env_int("BLUE_MAX_REQUESTS", 2000, 0)
max_requests_jitter = max_requests // 10

# The heartbeat file goes to a tmpfs: a disk-backed /tmp can stall a worker's heartbeat long
# enough to get it killed, and the root filesystem may be read-only.
if Path("/dev/shm").is_dir():
    worker_tmp_dir = "/dev/shm"
# Nothing here uses gunicornc (gunicorn >= 25.1), and its default socket lives under $HOME, which
# does not exist for the container user. Older gunicorn ignores this name.
control_socket_disable = True

# --- behind a load balancer ----------------------------------------------------------------------
# Addresses trusted to set X-Forwarded-Proto. Use the load balancer's addresses, or "*" only when
# nothing but the load balancer can reach the instances.
forwarded_allow_ips = os.environ.get("BLUE_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Only X-Forwarded-Proto: gunicorn rejects a request whose other listed headers disagree with it.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# --- logging -------------------------------------------------------------------------------------
# The application writes one JSON line per request itself, so gunicorn's access log is off unless
# BLUE_ACCESS_LOG is set ("-" for stdout).
accesslog = os.environ.get("BLUE_ACCESS_LOG") or None
logger_class = JsonAccessLogger
access_log_format = (
    '{"time": "%(t)s", "remote_addr": "%(h)s", "forwarded_for": "%({x-forwarded-for}i)s", '
    '"method": "%(m)s", "path": "%(U)s", "query": "%(q)s", "status": %(s)s, "bytes": %(B)s, '
    '"duration_ms": %(M)s, "request_id": "%({x-request-id}o)s", "user_agent": "%(a)s"}'
)
errorlog = "-"
loglevel = os.environ.get("BLUE_LOG_LEVEL", "INFO").strip().lower()


# --- garbage collection --------------------------------------------------------------------------
def post_worker_init(worker: Any) -> None:
    """Once the worker has built the application, hide its objects from the cyclic collector.

    The modules, SQLAlchemy metadata and Flask app (about 130,000 objects) live as long as the
    worker, yet every full collection walked them all: a 67 ms pause, now and then, in whatever
    request was running, which set the p99 of batch PATCHes in bench/. Frozen objects are never
    collected; what requests create still is.
    """
    gc.freeze()
