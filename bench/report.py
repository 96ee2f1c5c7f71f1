"""The bench's results: a table on stdout and bench/RESULTS.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.harness import Measurement


@dataclass(frozen=True, slots=True)
class Target:
    """One requirement of the issue, checked against the figures."""

    name: str
    goal: str
    observed: str
    passed: bool

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True, slots=True)
class MemoryRow:
    pid: int
    before_kib: int
    peak_kib: int
    after_kib: int


@dataclass
class Report:
    command: str
    started_at: datetime
    facts: dict[str, str] = field(default_factory=dict)
    # Per part: how busy the machine was, and how much of it was this bench.
    cpu: dict[str, str] = field(default_factory=dict)
    config: dict[str, str] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    memory: list[MemoryRow] = field(default_factory=list)
    memory_note: str = ""
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def find(self, scenario: str, operation: str) -> Measurement | None:
        for measurement in self.measurements:
            if measurement.scenario == scenario and measurement.operation == operation:
                return measurement
        return None

    def target(self, name: str, goal: str, observed: str, passed: bool) -> None:
        self.targets.append(Target(name, goal, observed, passed))

    def target_p50_ratio(
        self, name: str, big: Measurement, small: Measurement, limit: float
    ) -> None:
        """The target that `big`'s median latency is at most `limit` times `small`'s."""
        times = ratio(big.p50, small.p50)
        self.target(
            name,
            f"≤ {limit:.0f}× (p50)",
            f"{big.p50:.1f} ms vs {small.p50:.1f} ms = {times:.2f}×",
            times <= limit,
        )


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, infinite when the denominator is 0."""
    return numerator / denominator if denominator else float("inf")


HEADERS = ("scenario", "operation", "n", "conc", "throughput", "p50 ms", "p95 ms", "p99 ms", "err")


def _row(m: Measurement) -> tuple[str, ...]:
    return (
        m.scenario,
        m.operation,
        f"{len(m.latencies):,}",
        str(m.concurrency),
        f"{m.rate:,.1f} {m.unit}/s",
        f"{m.p50:.1f}",
        f"{m.p95:.1f}",
        f"{m.p99:.1f}",
        str(m.errors),
    )


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def render_text(report: Report) -> str:
    """The results as plain-text tables, for the terminal."""
    lines: list[str] = []
    rows = [HEADERS, *(_row(m) for m in report.measurements)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    numeric = {2, 3, 4, 5, 6, 7, 8}
    for number, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    if report.memory:
        lines.append("")
        lines.append("gunicorn worker RSS while listing all users (MiB): before / peak / after")
        for worker in report.memory:
            lines.append(
                f"  pid {worker.pid}: {_mib(worker.before_kib)} / {_mib(worker.peak_kib)} / "
                f"{_mib(worker.after_kib)}"
            )
        if report.memory_note:
            lines.append(f"  {report.memory_note}")
    if report.targets:
        lines.append("")
        lines.append("targets:")
        for target in report.targets:
            lines.append(
                f"  [{target.verdict}] {target.name}: {target.observed} (goal: {target.goal})"
            )
    for part, summary in report.cpu.items():
        lines.append(f"CPU during {part}: {summary}")
    for problem in report.problems:
        lines.append(f"PROBLEM: {problem}")
    return "\n".join(lines)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |"]
    out.append(
        "| " + " | ".join("---:" if i in right else "---" for i in range(len(headers))) + " |"
    )
    for row in rows:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return out


def render_markdown(report: Report) -> str:
    """bench/RESULTS.md: how the figures were made, the figures, and the verdicts."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`bench/__main__.py`); rerun it to refresh this file. Latencies",
        "are per request as the client on the same machine saw them; throughput is work done",
        "divided by the wall time of the whole run of that operation.",
        "",
        "## Run",
        "",
        f"- command: `{report.command}`",
        f"- date: {report.started_at.strftime('%Y-%m-%d %H:%M UTC')}",
    ]
    lines += [f"- {name}: {value}" for name, value in report.facts.items()]
    lines += [f"- CPU during part `{part}`: {summary}" for part, summary in report.cpu.items()]
    if report.config:
        lines += ["", "## Configuration", ""]
        lines += [f"- {name}: {value}" for name, value in report.config.items()]
    lines += ["", "## Targets", ""]
    lines += _table(
        ("target", "goal", "observed", "verdict"),
        [(t.name, t.goal, t.observed, f"**{t.verdict}**") for t in report.targets],
        set(),
    )
    scenarios: list[str] = []
    for measurement in report.measurements:
        if measurement.scenario not in scenarios:
            scenarios.append(measurement.scenario)
    for scenario in scenarios:
        measured = [m for m in report.measurements if m.scenario == scenario]
        lines += ["", f"## {scenario}", ""]
        lines += _table(
            HEADERS[1:] + ("note",),
            [(*_row(m)[1:], m.note) for m in measured],
            {1, 2, 3, 4, 5, 6, 7},
        )
        errors = [m for m in measured if m.first_error]
        for m in errors:
            lines.append("")
            lines.append(f"First error of “{m.operation}”: `{m.first_error[:300]}`")
    if report.memory:
        lines += ["", "## Worker memory while listing every user", ""]
        lines += _table(
            ("worker pid", "RSS before (MiB)", "peak during (MiB)", "after (MiB)"),
            [
                (str(r.pid), _mib(r.before_kib), _mib(r.peak_kib), _mib(r.after_kib))
                for r in report.memory
            ],
            {1, 2, 3},
        )
        if report.memory_note:
            lines += ["", report.memory_note]
    if report.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in report.notes]
    if report.problems:
        lines += ["", "## Problems", ""]
        lines += [f"- {problem}" for problem in report.problems]
    return "\n".join(lines) + "\n"


def write_markdown(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(report))
