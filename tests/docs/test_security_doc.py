"""docs/security.md names the test that proves each defence: every test or file it names must
exist, so the page cannot drift from the suite."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
# `tests/x/test_y.py::test_name`, `::test_name` or `test_name` (in the file last named), or a
# file alone.
REFERENCE = re.compile(r"(tests/[\w/]+\.py)?(?:(?:::\s*)?(test_\w+))?")


def named_tests() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    current = ""
    for match in re.finditer(r"`([^`]*tests/[^`]*|::\s*[^`]+|test_\w+\*?)`", DOC.read_text()):
        text = match.group(1).replace("\n", " ")
        parsed = REFERENCE.match(text.strip())
        assert parsed is not None
        path, name = parsed.group(1), parsed.group(2)
        current = path or current
        if name is not None and text.strip().endswith("*"):
            name = None  # a prefix such as test_unstorable_*: the file is checked
        found.append((current, name))
    return found


def test_every_test_the_security_page_names_exists() -> None:
    references = named_tests()
    assert len(references) > 30
    missing = []
    for path, name in references:
        file = ROOT / path
        if not (file.exists() or file.is_dir()):
            missing.append(path)
        elif name is not None and f"def {name}(" not in file.read_text():
            missing.append(f"{path}::{name}")
    assert missing == []
