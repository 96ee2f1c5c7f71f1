"""`python -m bench`: run the benchmarks, print the table, write bench/RESULTS.md.

Parts: `reference` (B, side by side with scim2-server at its scale), `scim` (A, our service over
HTTP on the full directory), `licensing` (C, mapping rules through the provisioning service).
Exits 1 when a target fails or a part cannot run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import licensing_bench, reference, scim_bench
from bench.export_bench import run as run_exports
from bench.harness import ROOT, VAR, CpuAccount, Postgres, load_average, machine_facts
from bench.licensing_bench import run_licensing
from bench.plan import Plan, log
from bench.reference import rate_targets, run_reference
from bench.report import Report, render_text, write_markdown
from bench.scim_bench import run_scim, scenario_name

PARTS = ("reference", "scim", "licensing", "export")
DATABASES = {
    "reference": reference.DATABASE,
    "scim": scim_bench.DATABASE,
    "licensing": licensing_bench.DATABASE,
    "export": "bench_export_",
}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def run_export(postgres: Postgres, plan: Plan, report: Report) -> None:
    """D: the access-review exports at the directory's size, streamed in constant memory."""
    table, ok = run_exports(postgres.admin_url.render_as_string(hide_password=False), plan.users)
    report.notes.append("D. exports (each in a fresh process; time and peak memory):\n\n" + table)
    report.target("exports: every export runs", "completes", "ok" if ok else "failed", ok)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the SCIM service, compare it with scim2-server, time licensing.",
    )
    parser.add_argument("--users", type=int, help="users in the directory (default 100000)")
    parser.add_argument("--groups", type=int, help="groups in the directory (default 2000)")
    parser.add_argument("--big-group", type=int, help="members of the big group (default 50000)")
    parser.add_argument("--only", choices=PARTS, help="run one part only")
    parser.add_argument(
        "--quick", action="store_true", help="small smoke run (2,000 users, few requests)"
    )
    parser.add_argument("--concurrency", type=int, help="client threads (default 4)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--reference-users", type=int, help="users in the reference comparison (default 2000)"
    )
    parser.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help="admin URL of the PostgreSQL server the bench_* databases are created on",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="markdown file to write (default bench/RESULTS.md; var/bench/RESULTS-quick.md "
        "with --quick, so a smoke run never replaces the recorded figures)",
    )
    return parser.parse_args(list(argv))


def plan_from(args: argparse.Namespace) -> Plan:
    plan = Plan.quick() if args.quick else Plan()
    overrides = {
        "users": args.users,
        "groups": args.groups,
        "big_group": args.big_group,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "reference_users": args.reference_users,
    }
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    if plan.big_group > plan.users:
        raise SystemExit("--big-group cannot exceed --users")
    return replace(
        plan,
        batch_members=min(plan.batch_members, plan.users),
        creates=max(plan.creates, 2),
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    plan = plan_from(args)
    parts = [args.only] if args.only else list(PARTS)
    results = args.results or (
        VAR / "RESULTS-quick.md" if args.quick else ROOT / "bench" / "RESULTS.md"
    )
    postgres = Postgres(args.postgres)
    report = Report(
        command=shlex.join([".venv/bin/python", "-m", "bench", *arguments]),
        started_at=datetime.now(UTC),
    )
    try:
        report.facts = machine_facts(postgres)
    except psycopg.OperationalError as error:
        raise SystemExit(
            f"cannot reach PostgreSQL at {postgres.conninfo()}: {error}\n"
            "start it (see .ci/run) or pass --postgres"
        ) from None
    report.config = plan.describe()
    runners: dict[str, Callable[[Postgres, Plan, Report], None]] = {
        "reference": run_reference,
        "scim": run_scim,
        "licensing": run_licensing,
        "export": run_export,
    }
    cpus = int(report.facts.get("nproc", "0") or 0)
    try:
        for part in parts:
            log(f"part {part}")
            try:
                with CpuAccount([DATABASES[part]]) as account:
                    runners[part](postgres, plan, report)
                report.cpu[part] = account.summary(cpus)
            except Exception as error:  # one broken part must not lose the others' figures
                log(traceback.format_exc())
                report.problems.append(f"{part} failed: {type(error).__name__}: {error}")
                report.target(f"{part}: runs", "completes", f"{type(error).__name__}", False)
        compare_big_directory_with_reference(plan, report)
    finally:
        postgres.drop_all()
    report.facts["load average at end (1/5/15 min)"] = load_average()
    print(render_text(report))
    write_markdown(report, results)
    log(f"results written to {results}")
    return 0 if report.targets and all(t.passed for t in report.targets) else 1


def compare_big_directory_with_reference(plan: Plan, report: Report) -> None:
    """Our rates on the full directory against the reference's at its own, far smaller scale."""
    ours = scenario_name(plan)
    theirs_scenario = next(
        (m.scenario for m in report.measurements if m.scenario.startswith("B. reference")), None
    )
    if theirs_scenario is None:
        return
    rate_targets(
        report,
        theirs_scenario,
        ours,
        f"ours at {plan.users:,} users vs reference at {plan.reference_users:,}",
    )


if __name__ == "__main__":
    sys.exit(main())
