"""A. Our SCIM service on PostgreSQL with the issue's directory (100,000 users, 2,000 groups, one
of 50,000 members), under gunicorn, measured through HTTP."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from bench.harness import (
    HttpClient,
    Measurement,
    Postgres,
    RssSampler,
    expect,
    freeze_garbage,
    percentile,
    timed_runs,
)
from bench.plan import Plan, log
from bench.report import MemoryRow, Report, ratio
from bench.scim_ops import (
    GroupUnderTest,
    batch_add,
    create_users,
    lookups,
    patch,
    single_member_patches,
    warm_up,
)
from bench.seed import Directory, external_id, organization_id, seed_directory, user_name
from bench.service import (
    ORG_SLUG,
    BenchDatabase,
    gunicorn,
    prepare_database,
    report_server_errors,
)

DATABASE = "bench_scim"
P99_LIMIT_MS = 50.0
PATCH_RATIO_LIMIT = 2.0
# Worker memory is "flat" when the workers' total RSS never rises more than this above where it
# stood before the listing started.
MEMORY_GROWTH_LIMIT = 0.10
WARM_UP_REQUESTS = 40


def scenario_name(plan: Plan) -> str:
    return f"A. our service, {plan.users:,} users, {plan.groups:,} groups"


def list_everything(
    client: HttpClient, scenario: str, page_size: int, workers: Sequence[int]
) -> tuple[Measurement, list[MemoryRow]]:
    """Page through every user with startIndex/count, as an IdP's import does, while sampling
    the workers' RSS."""
    sampler = RssSampler(workers)
    before = sampler.snapshot()
    latencies: list[float] = []
    errors: list[str] = []
    seen: set[str] = set()
    total: int | None = None
    start = 1
    began = time.perf_counter()
    with sampler:
        while total is None or start <= total:
            query = {"startIndex": start, "count": page_size}
            sent = time.perf_counter()
            response = client.request("GET", "/Users", query=query)
            latencies.append(time.perf_counter() - sent)
            problem = expect(response, 200)
            if problem is not None:
                errors.append(problem)
                break
            body = response.json()
            total = int(body["totalResults"])
            page = body.get("Resources", [])
            if not page:
                break
            seen.update(str(r["id"]) for r in page)
            start += page_size
    elapsed = time.perf_counter() - began
    after = sampler.snapshot()
    if total is not None and len(seen) != total:
        errors.append(f"listed {len(seen):,} distinct users of {total:,}")
    peak = sampler.peak()
    memory = [
        MemoryRow(pid, before.get(pid, 0), max(peak.get(pid, 0), before.get(pid, 0)), after[pid])
        for pid in sorted(after)
    ]
    measurement = Measurement(
        scenario=scenario,
        operation=f"list all users, pages of {page_size}",
        latencies=latencies,
        elapsed=elapsed,
        items=len(seen),
        unit="users",
        errors=len(errors),
        note=(
            f"{len(latencies):,} pages, latency per page: first 10 pages p50 "
            f"{_median_ms(latencies[:10]):.1f} ms, last 10 pages p50 "
            f"{_median_ms(latencies[-10:]):.1f} ms"
        ),
        first_error=errors[0] if errors else "",
    )
    return measurement, memory


def _median_ms(latencies: Sequence[float]) -> float:
    return percentile(sorted(latencies), 0.5) * 1000


def run_scim(postgres: Postgres, plan: Plan, report: Report) -> None:
    """Seed the big directory, serve it, and time every operation the issue lists."""
    scenario = scenario_name(plan)
    database, directory = seed_scim_directory(postgres, plan, report)
    big_label = f"{len(directory.big.member_indexes):,}-member group"
    small_label = f"{len(directory.small.member_indexes)}-member group"
    rng = random.Random(1127)
    with gunicorn(database, plan.workers, "scim") as service:
        client = service.client
        workers = service.process.children()
        log(f"A: gunicorn {service.base_url} pid {service.process.pid}, workers {workers}")
        warm_up(client, "a", WARM_UP_REQUESTS, plan.concurrency)
        new_ids = time_creates_and_lookups(client, scenario, plan, rng, report)

        log("A: listing every user")
        listing, memory = list_everything(client, scenario, plan.page_size, workers)
        report.measurements.append(listing)
        report.memory = memory

        log(f"A: adding {plan.batch_members:,} members to an empty group")
        members = rng.sample(range(plan.users), min(plan.batch_members, plan.users))
        report.measurements.append(
            batch_add(
                client,
                scenario,
                str(directory.empty.id),
                [str(directory.user_ids[i]) for i in members],
                plan.batch_size,
            )
        )

        log(f"A: {plan.single_iterations} single-member add+remove on the big and small groups")
        # Movers belong to no group, so adding and removing them never touches other groups.
        movers = [str(directory.user_ids[i]) for i in directory.ungrouped[:2]]
        movers += [i for i in new_ids if i][: 2 - len(movers)]
        report.measurements += single_member_patches(
            client,
            scenario,
            [
                GroupUnderTest(big_label, str(directory.big.id), movers[0]),
                GroupUnderTest(small_label, str(directory.small.id), movers[1]),
            ],
            plan.single_iterations,
        )
        time_deactivations_and_deletes(client, scenario, plan, directory, rng, report)
    report_server_errors(report, "A", service.process.log_path)
    postgres.drop(DATABASE)
    check_targets(plan, report, scenario, big_label, small_label)


def seed_scim_directory(
    postgres: Postgres, plan: Plan, report: Report
) -> tuple[BenchDatabase, Directory]:
    """A fresh database holding the plan's directory, seeded by COPY (setup, not measured)."""
    log(f"A: creating database {DATABASE}")
    database = prepare_database(postgres, DATABASE)
    org_id = organization_id(database.conninfo, ORG_SLUG)
    log(f"A: seeding {plan.users:,} users and {plan.groups:,} groups")
    began = time.perf_counter()
    directory = seed_directory(database.conninfo, org_id, plan.users, plan.groups, plan.big_group)
    freeze_garbage()
    report.notes.append(
        f"A: seeding {plan.users:,} users, {plan.groups:,} groups and their memberships with COPY "
        f"took {time.perf_counter() - began:.1f} s (setup, not measured)."
    )
    return database, directory


def time_creates_and_lookups(
    client: HttpClient, scenario: str, plan: Plan, rng: random.Random, report: Report
) -> list[str]:
    """Time creating new users, then looking seeded ones up by userName and by externalId;
    the new users' ids (empty where a create failed)."""
    log(f"A: {plan.creates:,} creates")
    people = [(f"new{i:06d}@example.com", f"new-{i:06d}") for i in range(plan.creates)]
    created, new_ids = create_users(client, scenario, people, plan.concurrency)
    report.measurements.append(created)

    picks = [rng.randrange(plan.users) for _ in range(plan.lookups)]
    log(f"A: {plan.lookups:,} lookups by userName, then by externalId")
    report.measurements.append(
        lookups(client, scenario, "userName", [user_name(i) for i in picks], plan.concurrency)
    )
    picks = [rng.randrange(plan.users) for _ in range(plan.lookups)]
    report.measurements.append(
        lookups(client, scenario, "externalId", [external_id(i) for i in picks], plan.concurrency)
    )
    return new_ids


def time_deactivations_and_deletes(
    client: HttpClient,
    scenario: str,
    plan: Plan,
    directory: Directory,
    rng: random.Random,
    report: Report,
) -> None:
    """Time deactivating some seeded users and deleting others (no user twice)."""
    chosen = rng.sample(range(plan.users), plan.deactivations + plan.deletes)
    to_deactivate = [str(directory.user_ids[i]) for i in chosen[: plan.deactivations]]
    to_delete = [str(directory.user_ids[i]) for i in chosen[plan.deactivations :]]

    def deactivate(user_id: str) -> str | None:
        body = patch({"op": "replace", "path": "active", "value": False})
        return expect(client.request("PATCH", f"/Users/{user_id}", body), 200, 204)

    def delete(user_id: str) -> str | None:
        return expect(client.request("DELETE", f"/Users/{user_id}"), 204)

    log(f"A: {plan.deactivations:,} deactivations, {plan.deletes:,} deletes")
    report.measurements.append(
        timed_runs(
            scenario,
            "deactivate (PATCH active false)",
            to_deactivate,
            deactivate,
            plan.concurrency,
        )
    )
    report.measurements.append(
        timed_runs(
            scenario,
            "delete (DELETE /Users/{id})",
            to_delete,
            delete,
            plan.concurrency,
            note="about half are members of the big group",
        )
    )


def check_targets(
    plan: Plan, report: Report, scenario: str, big_label: str, small_label: str
) -> None:
    for measurement in report.measurements:
        if measurement.scenario != scenario:
            continue
        report.target(
            f"p99 < {P99_LIMIT_MS:.0f} ms: {measurement.operation} ({plan.users:,} users)",
            f"< {P99_LIMIT_MS:.0f} ms, no errors",
            f"{measurement.p99:.1f} ms"
            + (f", {measurement.errors} errors" if measurement.errors else ""),
            measurement.p99 < P99_LIMIT_MS and measurement.errors == 0,
        )
    for action in ("add", "remove"):
        big = report.find(scenario, f"1-member PATCH {action}, {big_label}")
        small = report.find(scenario, f"1-member PATCH {action}, {small_label}")
        if big is None or small is None:
            continue
        report.target_p50_ratio(
            f"1-member PATCH {action}: {big_label} vs {small_label} (HTTP)",
            big,
            small,
            PATCH_RATIO_LIMIT,
        )
    if report.memory:
        before = sum(r.before_kib for r in report.memory)
        peak = sum(r.peak_kib for r in report.memory)
        after = sum(r.after_kib for r in report.memory)
        growth = ratio(peak - before, before)
        report.memory_note = (
            f"Total over {len(report.memory)} workers: {before / 1024:.1f} MiB before, "
            f"{peak / 1024:.1f} MiB peak (sum of per-worker peaks), {after / 1024:.1f} MiB after."
        )
        report.target(
            "worker memory flat while listing every user",
            f"total worker RSS peak ≤ before + {MEMORY_GROWTH_LIMIT:.0%}",
            f"{before / 1024:.1f} → peak {peak / 1024:.1f} → after {after / 1024:.1f} MiB "
            f"({growth:+.1%})",
            growth <= MEMORY_GROWTH_LIMIT,
        )
