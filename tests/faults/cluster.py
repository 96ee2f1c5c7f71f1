"""A private PostgreSQL cluster in a temporary directory, on a free port, that a test may stop
and start: the shared test server is never restarted (other runs use it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import free_port

POSTGRES_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
# initdb refuses root: as root, the cluster runs as this user.
CLUSTER_USER = "postgres"


@dataclass(frozen=True, slots=True)
class PrivateCluster:
    bin_dir: Path
    data_dir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *argv: str) -> None:
        """Run a PostgreSQL program (as CLUSTER_USER when we are root)."""
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", CLUSTER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} "
            "-c fsync=off -c synchronous_commit=off -c max_connections=60"
        )
        log = self.data_dir / "server.log"
        self.run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; `fast` ends every session at once, as a crash or failover would."""
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """initdb a cluster in a temporary directory, start it, and remove it afterwards."""
    if not POSTGRES_BINARIES:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    bin_dir = POSTGRES_BINARIES[-1].parent
    top = Path(tempfile.mkdtemp(prefix="blue-cluster-"))
    data_dir = top / "data"
    data_dir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, CLUSTER_USER)
        shutil.chown(data_dir, CLUSTER_USER)
    cluster = PrivateCluster(bin_dir, data_dir, free_port())
    try:
        cluster.run("initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "--no-sync")
        cluster.start()
        try:
            yield cluster
        finally:
            try:
                cluster.stop("immediate")
            except subprocess.CalledProcessError:
                pass  # stopped already (the test failed while it was down)
    finally:
        shutil.rmtree(top, ignore_errors=True)
