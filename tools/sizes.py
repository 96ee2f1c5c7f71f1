"""The longest module, class and function of the product code, against the limits we keep.

Run by `make test`: exits 1 when any module, class or function is over its limit, listing each.
Migrations and tests are left out (a migration is a record, not a design).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOTS = ("app", "scim", "sso", "licensing", "bench", "deploy", "docs", "tools")
SKIPPED = ("migrations",)
LIMITS = {"module": 700, "class": 400, "function": 60}


class Measure(NamedTuple):
    kind: str
    lines: int
    where: str


def measures(top: Path) -> Iterator[Measure]:
    """Every module, class and function under the product roots, with its length in lines."""
    for root in ROOTS:
        for path in sorted((top / root).rglob("*.py")):
            if any(part in SKIPPED for part in path.parts):
                continue
            name = path.relative_to(top).as_posix()
            source = path.read_text()
            yield Measure("module", len(source.splitlines()), name)
            for node in ast.walk(ast.parse(source, name)):
                if isinstance(node, ast.ClassDef):
                    kind = "class"
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    kind = "function"
                else:
                    continue
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                yield Measure(kind, lines, f"{name}:{node.lineno} {node.name}")


def main(argv: list[str]) -> int:
    """Print the longest of each kind and everything over its limit; 1 when anything is."""
    top = Path(argv[1]) if len(argv) > 1 else Path.cwd()
    found = list(measures(top))
    over = 0
    for kind, limit in LIMITS.items():
        of_kind = sorted((m for m in found if m.kind == kind), reverse=True, key=lambda m: m.lines)
        if of_kind:
            longest = of_kind[0]
            print(f"longest {kind}: {longest.lines} lines, {longest.where} (limit {limit})")
        for measure in of_kind:
            if measure.lines > limit:
                over += 1
                print(f"  over: {measure.lines} lines, {measure.where}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
