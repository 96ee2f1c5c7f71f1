"""tools/sizes.py: what `make test` enforces about the length of modules, classes and functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

TOP = Path(__file__).resolve().parents[2]


def sizes() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sizes", TOP / "tools" / "sizes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def function(name: str, lines: int) -> str:
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 1))
    return f"def {name}() -> None:\n{body}\n"


def test_a_function_over_sixty_lines_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "short.py").write_text(function("fits", 60))
    (tmp_path / "app" / "long.py").write_text(function("too_long", 61))
    assert sizes().main(["sizes", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "over: 61 lines, app/long.py:1 too_long" in out
    assert "fits" not in out


def test_migrations_and_tests_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "app" / "migrations").mkdir(parents=True)
    (tmp_path / "app" / "migrations" / "0001.py").write_text(function("upgrade", 200))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(function("test_long", 200))
    assert sizes().main(["sizes", str(tmp_path)]) == 0


def test_the_product_code_is_within_its_limits(capsys: pytest.CaptureFixture[str]) -> None:
    assert sizes().main(["sizes", str(TOP)]) == 0, capsys.readouterr().out
