"""Streaming exports: CSV, JSON Lines and JSON writers that hold one row at a time, so an
organization of 100,000 users exports in constant memory."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

# Rows are gathered into chunks of about this many characters before they are written:
# one socket write per row would cost more than the rows themselves.
CHUNK_CHARS = 64 * 1024
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection");
# user names and group names come from the IdP, so such cells get a leading apostrophe.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class Format(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


MEDIA_TYPES = {
    Format.JSON: "application/json",
    Format.JSONL: "application/jsonl",
    Format.CSV: "text/csv; charset=utf-8",
}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """One JSON value on one line; datetimes as ISO 8601."""
    return json.dumps(value, default=_json_default)


def cell(value: Any) -> str:
    """A value as one CSV cell: lists of names joined by "; ", structures as JSON."""
    if type(value) is str:  # most cells: the fast path
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        text = "; ".join(value)
    elif isinstance(value, dict | list | tuple):
        return json.dumps(value, default=_json_default, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_lines(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    """A header line, then one CSV line per row; one row is buffered at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(columns)
    for row in rows:
        yield line(cell(row.get(column)) for column in columns)


def jsonl_lines(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """One JSON object per line (JSON Lines)."""
    for row in rows:
        yield dumps(row) + "\n"


def json_document(
    head: Mapping[str, Any], key: str, rows: Iterable[Mapping[str, Any]]
) -> Iterator[str]:
    """`{**head, key: [rows…]}` written piece by piece: a JSON document of any length."""
    opening = dumps(dict(head))
    yield (opening[:-1] + ", " if head else "{") + dumps(key) + ": ["
    separator = ""
    for row in rows:
        yield separator + dumps(row)
        separator = ", "
    yield "]}\n"


def render(
    format_: Format,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    head: Mapping[str, Any] | None = None,
    key: str = "rows",
) -> Iterator[str]:
    """The rows in the chosen format: JSON as `{**head, key: [...]}`, else CSV or JSON Lines."""
    if format_ is Format.CSV:
        return csv_lines(rows, columns)
    if format_ is Format.JSONL:
        return jsonl_lines(rows)
    return json_document(head or {}, key, rows)


def chunked(parts: Iterable[str], size: int | None = None) -> Iterator[str]:
    """Concatenate small pieces into chunks of about `size` (CHUNK_CHARS) characters."""
    limit = CHUNK_CHARS if size is None else size
    pending: list[str] = []
    length = 0
    for part in parts:
        pending.append(part)
        length += len(part)
        if length >= limit:
            yield "".join(pending)
            pending, length = [], 0
    if pending:
        yield "".join(pending)
