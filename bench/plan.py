"""How big the bench runs: the issue's full targets, or a quick smoke run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the results table."""
    elapsed = int(time.monotonic() - _STARTED)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Plan:
    users: int = 100_000
    groups: int = 2_000
    big_group: int = 50_000
    # Requests per timed operation on the big directory.
    creates: int = 2_000
    lookups: int = 2_000
    deactivations: int = 1_000
    deletes: int = 1_000
    single_iterations: int = 100
    batch_members: int = 2_000
    batch_size: int = 50
    page_size: int = 100
    # The side-by-side comparison with the reference server.
    reference_users: int = 2_000
    reference_iterations: int = 100
    # Licensing: add/remove iterations through the service.
    licensing_iterations: int = 50
    concurrency: int = 4
    workers: int = 4

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            users=2_000,
            groups=50,
            big_group=1_000,
            creates=200,
            lookups=200,
            deactivations=100,
            deletes=100,
            single_iterations=20,
            batch_members=1_000,
            reference_users=500,
            reference_iterations=20,
            licensing_iterations=10,
        )

    def describe(self) -> dict[str, str]:
        return {
            "directory": (
                f"{self.users:,} users, {self.groups:,} groups "
                f"(one of {self.big_group:,} members, one of 10, one empty, the rest of 10)"
            ),
            "server": (
                f"gunicorn, deploy/gunicorn.conf.py, {self.workers} workers of its default "
                "BLUE_THREADS=4 (gthread, connections kept alive), "
                "BLUE_SCIM_RATE_LIMIT=0, BLUE_MAX_REQUESTS=0, BLUE_LOG_LEVEL=WARNING"
            ),
            "client": (
                f"bench process on the same machine, http.client, {self.concurrency} threads for "
                "creates, lookups, deactivations and deletes; one at a time for listing and group "
                "PATCHes (an IdP changes one group serially)"
            ),
            "requests per operation": (
                f"{self.creates:,} creates, {self.lookups:,} lookups of each kind, "
                f"{self.deactivations:,} deactivations, {self.deletes:,} deletes, "
                f"{self.single_iterations} single-member add+remove per group, "
                f"{self.batch_members:,} members in PATCHes of {self.batch_size}, "
                f"pages of {self.page_size}"
            ),
            "reference comparison": (
                f"{self.reference_users:,} users on each server, "
                f"{self.reference_iterations} single-member add+remove per group"
            ),
        }
