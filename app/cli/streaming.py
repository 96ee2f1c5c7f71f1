"""The options of the commands that stream a document (`audit export`, `report …`): ISO 8601
dates as UTC instants, `--format`, `--output`, and writing to a file (whole or not at all)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import click

from app import reporting
from app.cli.common import F
from app.reporting import exports
from app.reporting.exports import Format

FORMATS = [f.value for f in Format]


def instant(
    end_of_day: bool = False, as_of: bool = False
) -> Callable[[click.Context, click.Parameter, str | None], datetime | None]:
    """An option callback reading an ISO 8601 date or datetime as a UTC instant."""

    def parse(_: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
        if value is None:
            return None
        try:
            if as_of:
                return reporting.parse_as_of(value)
            return reporting.parse_instant(value, end_of_day)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not an ISO 8601 date or datetime", param=param
            ) from None

    return parse


def format_option(default: str = Format.JSON.value) -> Callable[[F], F]:
    """`--format`: the document's file format, passed as `format_`."""
    return click.option(
        "--format", "format_", type=click.Choice(FORMATS), default=default, show_default=True
    )


def output_option() -> Callable[[F], F]:
    """`--output`/`-o`: the file to write the document to, `-` for stdout."""
    return click.option(
        "--output",
        "-o",
        default="-",
        show_default=True,
        help="File to write (written whole or not at all); - for stdout.",
    )


def write(parts: Iterable[str], output: str) -> None:
    """Write the pieces to a file (replaced only once complete) or, for "-", to stdout."""
    with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as target:
        for chunk in exports.chunked(parts):
            target.write(chunk)
