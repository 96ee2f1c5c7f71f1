"""A GET whose request line is too long for the web server gets a SCIM error body, not
gunicorn's HTML page (#16 item 9): a real gunicorn with deploy/gunicorn.conf.py, on a free port,
with each worker class the settings choose (gthread for BLUE_THREADS > 1, sync for 1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LIMIT = 8190  # deploy/gunicorn.conf.py: limit_request_line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def exchange(port: int, target: str) -> tuple[int, dict[str, str], bytes]:
    """Send one GET and read the whole answer (the server closes after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.fixture(scope="module", params=["2", "1"], ids=["gthread", "sync"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """gunicorn serving a migrated SQLite database; the port it listens on."""
    port = free_port()
    database = tmp_path_factory.mktemp("gunicorn") / "blue.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLUE_")}
    env |= {
        "BLUE_DATABASE_URL": f"sqlite:///{database}",
        "BLUE_BIND": f"127.0.0.1:{port}",
        "BLUE_WORKERS": "1",
        "BLUE_THREADS": request.param,
        "BLUE_LOG_LEVEL": "WARNING",
    }
    subprocess.run([BIN / "blue-provisioning", "db", "upgrade"], env=env, check=True, cwd=ROOT)
    argv = [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "app:create_app()"]
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if exchange(port, "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not answer /healthz within 30 s")
        yield port
    finally:
        process.terminate()
        process.wait(30)


def filter_target(length: int) -> str:
    """/scim/v2/Users?filter=userName eq "aaa…", `length` bytes long."""
    prefix = "/scim/v2/Users?filter=" + quote('userName eq "')
    return prefix + "a" * (length - len(prefix) - len(quote('"'))) + quote('"')


def test_a_request_line_past_the_limit_is_a_scim_414_with_a_hint(server: int) -> None:
    status, headers, body = exchange(server, filter_target(LIMIT + 100))
    assert status == 414
    assert headers["content-type"] == "application/scim+json"
    error = json.loads(body)
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == "414"
    assert "POST /scim/v2/Users/.search" in error["detail"]


def test_a_line_gunicorns_default_refused_now_reaches_the_service(server: int) -> None:
    """Past gunicorn's default of 4094 bytes, within 8190: the service answers (401 without a
    token), in its own SCIM error."""
    status, headers, body = exchange(server, filter_target(6000))
    assert status == 401
    assert headers["content-type"] == "application/scim+json"
    assert json.loads(body)["status"] == "401"
