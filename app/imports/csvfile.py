"""Reading an import's CSV file: the dialect sniffed (`,`, `;` or tab), the header's spelling
forgiven, each row parsed and checked on its own, one at a time (a file of any size is read
in constant memory). What needs the directory (projects, roles, duplicates) is checked by
`app.imports.jobs`."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, TextIO

# Header spellings, normalized (lower case, no spaces, '_' or '-'), by the field they name.
ALIASES = {
    "email": "email",
    "emailaddress": "email",
    "mail": "email",
    "workemail": "email",
    "username": "user_name",
    "login": "user_name",
    "user": "user_name",
    "givenname": "given_name",
    "firstname": "given_name",
    "forename": "given_name",
    "familyname": "family_name",
    "lastname": "family_name",
    "surname": "family_name",
    "groups": "groups",
    "group": "groups",
    "projectroles": "project_roles",
    "projectrole": "project_roles",
    "roles": "project_roles",
}
# The longest value each field takes: the directory's column sizes.
MAX_LENGTH = {"user_name": 256, "email": 320, "given_name": 256, "family_name": 256}
MAX_GROUP_NAME = 256
MAX_LIST = 100  # groups or project roles in one cell
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Groups named like this belong to the import's project roles (app.provisioning.imports).
RESERVED_PREFIX = "import:"
SNIFF_BYTES = 16_384


class CsvFileError(ValueError):
    """The file as a whole cannot be imported (no header, no identifier column, …)."""


@dataclass(frozen=True, slots=True)
class ParsedRow:
    """One line of the file: its values as the import stores them, or why it is refused."""

    line: int
    values: dict[str, Any]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class CsvFile:
    """An open file's columns and its rows, read as they are iterated."""

    fields: tuple[str | None, ...]
    ignored_columns: tuple[str, ...]
    rows: Iterator[ParsedRow]


def normalize(header: str) -> str:
    """A header's spelling without case, spaces, '_' or '-' (`Given name` = `given_name`)."""
    return re.sub(r"[\s_\-]", "", header.strip().lstrip("\ufeff")).lower()


def open_csv(stream: TextIO) -> CsvFile:
    """Read the header and sniff the dialect; the rows follow as the result is iterated."""
    sample: list[str] = []
    size = 0
    for text_line in stream:
        sample.append(text_line)
        size += len(text_line)
        if size >= SNIFF_BYTES:
            break
    if not sample:
        raise CsvFileError("the file is empty")
    dialect = _dialect("".join(sample))
    reader = csv.reader(chain(sample, stream), dialect)
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise CsvFileError("the first line must name the columns")
    fields = _fields(header)
    ignored = tuple(
        h.strip() for h, f in zip(header, fields, strict=True) if f is None and h.strip()
    )
    return CsvFile(fields, ignored, _rows(reader, fields))


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    """The sample's dialect among `,`, `;` and tab; a one-column file is plain CSV."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in ",;\t"}
        best = max(counts, key=lambda d: counts[d])

        class Fallback(csv.excel):
            delimiter = best if counts[best] else ","

        return Fallback


def _fields(header: Sequence[str]) -> tuple[str | None, ...]:
    """The field each column holds (None: a column the import does not read)."""
    fields = tuple(ALIASES.get(normalize(h)) for h in header)
    named = [f for f in fields if f is not None]
    twice = sorted({f for f in named if named.count(f) > 1})
    if twice:
        raise CsvFileError(f"more than one column holds {', '.join(twice)}")
    if "email" not in named and "user_name" not in named:
        raise CsvFileError("the file needs an email or a userName column")
    return fields


def _rows(reader: Any, fields: tuple[str | None, ...]) -> Iterator[ParsedRow]:
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line is no row
            yield parse_row(reader.line_num, cells, fields)
    except csv.Error as error:
        raise CsvFileError(f"line {reader.line_num}: {error}") from None


def parse_row(line: int, cells: Sequence[str], fields: tuple[str | None, ...]) -> ParsedRow:
    """One row's values, or the first problem with it."""
    if len(cells) > len(fields) and any(c.strip() for c in cells[len(fields) :]):
        return ParsedRow(line, {}, f"{len(cells)} cells, but the header names {len(fields)}")
    if any("\x00" in cell for cell in cells):
        # PostgreSQL text cannot hold NUL (a decoded UTF-8 file has no lone surrogates).
        return ParsedRow(line, {}, "a cell contains a character that cannot be stored (NUL)")
    raw = {f: cells[i].strip() for i, f in enumerate(fields) if f is not None and i < len(cells)}
    values: dict[str, Any] = {}
    for name, limit in MAX_LENGTH.items():
        value = raw.get(name) or None
        if value is not None and len(value) > limit:
            return ParsedRow(line, {}, f"{name} is longer than {limit} characters")
        values[name] = value
    email = values["email"]
    if email is not None and not EMAIL.match(email):
        return ParsedRow(line, values, f"{email!r} is not an email address")
    if values["user_name"] is None:
        if email is None:
            return ParsedRow(line, values, "email or userName is required")
        values["user_name"] = email
    groups, problem = _groups(raw.get("groups", ""))
    if problem is None:
        values["groups"] = groups
        pairs, problem = _project_roles(raw.get("project_roles", ""))
        values["project_roles"] = pairs
    return ParsedRow(line, values, problem)


def split_list(cell: str) -> list[str]:
    """A cell's `;`-separated items, trimmed, empty ones left out, each once (ignoring case)."""
    items: dict[str, str] = {}
    for item in cell.split(";"):
        item = item.strip()
        if item:
            items.setdefault(item.lower(), item)
    return list(items.values())


def _groups(cell: str) -> tuple[list[str], str | None]:
    groups = split_list(cell)
    if len(groups) > MAX_LIST:
        return [], f"more than {MAX_LIST} groups"
    for name in groups:
        if len(name) > MAX_GROUP_NAME:
            return [], f"group name longer than {MAX_GROUP_NAME} characters"
        if name.lower().startswith(RESERVED_PREFIX):
            return [], f"group {name!r}: names starting {RESERVED_PREFIX!r} are the import's own"
    return groups, None


def _project_roles(cell: str) -> tuple[list[list[str]], str | None]:
    """`project:Role;project:Role` as [project, role] pairs (a project key has no ':')."""
    pairs: list[list[str]] = []
    items = split_list(cell)
    if len(items) > MAX_LIST:
        return [], f"more than {MAX_LIST} project roles"
    for item in items:
        project, colon, role = item.partition(":")
        if not colon or not project.strip() or not role.strip():
            return [], f"project role {item!r} is not project:Role"
        pairs.append([project.strip(), role.strip()])
    return pairs, None
