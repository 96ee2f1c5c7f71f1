"""Property: the filter → SQL translation (scim/filters/) selects exactly the users that a plain
in-memory evaluation of the same filter selects, on random users, on every backend.

The evaluator below is written from RFC 7644 §3.4.2.2 for a small attribute set: userName and
displayName (not caseExact, stored lowered), title (not caseExact), externalId (caseExact),
active, and emails with its value, type and primary sub-attributes and value filters. Values
come from a small alphabet so that equal values, prefixes and LIKE's metacharacters meet often;
its letters differ in case only in ASCII, the only case SQLite's lower() folds.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db import Base, make_engine
from app.models import Organization, User, UserValue
from scim.filters import user_filter
from tests.fuzz.profiles import profile

POSTGRES_URL = os.environ.get("BLUE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
ORG_ID = uuid.UUID("0f000000-0000-4000-8000-000000000000")
ALPHABET = "aAbB0_%\\ é"


@dataclass(frozen=True)
class Email:
    value: str
    type: str | None
    primary: bool


@dataclass(frozen=True)
class Person:
    user_name: str
    display_name: str | None
    title: str | None
    external_id: str | None
    active: bool
    emails: tuple[Email, ...] = field(default=())


words = st.text(alphabet=ALPHABET, max_size=3)
maybe_words = st.none() | words
emails = st.builds(Email, words, maybe_words, st.booleans())
people = st.lists(
    st.builds(
        Person,
        st.text(alphabet=ALPHABET, min_size=1, max_size=3),
        maybe_words,
        maybe_words,
        maybe_words,
        st.booleans(),
        st.lists(emails, max_size=3).map(tuple),
    ),
    max_size=6,
    unique_by=lambda person: person.user_name.lower(),
)

# --- Filters: the text sent, and the predicate the RFC gives it -------------------------------

Predicate = Callable[[Any], bool]


@dataclass(frozen=True)
class Filter:
    text: str
    matches: Predicate


def present(value: str | None) -> bool:
    """`pr`: assigned and, for a string, not empty (RFC 7644 §3.4.2.2)."""
    return value is not None and value != ""


def compare_string(value: str | None, op: str, literal: str | None, case_exact: bool) -> bool:
    if op == "pr":
        return present(value)
    if literal is None:
        return not present(value) if op == "eq" else present(value)
    if value is None:
        return op == "ne"  # an unassigned value differs from every value
    if not case_exact:
        value, literal = value.lower(), literal.lower()
    results = {
        "eq": value == literal,
        "ne": value != literal,
        "co": literal in value,
        "sw": value.startswith(literal),
        "ew": value.endswith(literal),
        "gt": value > literal,
        "ge": value >= literal,
        "lt": value < literal,
        "le": value <= literal,
    }
    return results[op]


STRING_OPS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")


@st.composite
def string_comparison(draw: st.DrawFn, name: str) -> tuple[str, str, str | None]:
    """(text after the attribute, op, literal): `pr`, `eq null`, or an operator and a string."""
    kind = draw(st.sampled_from(["pr", "null", "value", "value", "value"]))
    if kind == "pr":
        return "pr", "pr", None
    if kind == "null":
        op = draw(st.sampled_from(["eq", "ne"]))
        return f"{op} null", op, None
    op, literal = draw(st.sampled_from(STRING_OPS)), draw(words)
    return f"{draw(st.sampled_from([op, op.upper()]))} {json.dumps(literal)}", op, literal


# (filter name, how a person's value is read, caseExact)
SINGLE_STRINGS: list[tuple[str, Callable[[Person], str | None], bool]] = [
    ("userName", lambda p: p.user_name, False),
    ("displayName", lambda p: p.display_name, False),
    ("title", lambda p: p.title, False),
    ("externalId", lambda p: p.external_id, True),
]


@st.composite
def single_string(draw: st.DrawFn) -> Filter:
    name, read, case_exact = draw(st.sampled_from(SINGLE_STRINGS))
    written, op, literal = draw(string_comparison(name))
    return Filter(f"{name} {written}", lambda p: compare_string(read(p), op, literal, case_exact))


@st.composite
def boolean(draw: st.DrawFn, name: str, read: Callable[[Any], bool]) -> Filter:
    op = draw(st.sampled_from(["eq", "ne", "pr"]))
    if op == "pr":
        return Filter(f"{name} pr", lambda _: True)  # never unassigned
    literal, equal = draw(st.booleans()), op == "eq"
    return Filter(f"{name} {op} {json.dumps(literal)}", lambda p: (read(p) == literal) == equal)


EMAIL_STRINGS: list[tuple[str, Callable[[Email], str | None]]] = [
    ("value", lambda e: e.value),
    ("type", lambda e: e.type),
]


@st.composite
def email_condition(draw: st.DrawFn) -> Filter:
    """A condition on one email, inside emails[...]."""
    if draw(st.booleans()):
        return draw(boolean("primary", lambda e: e.primary))
    name, read = draw(st.sampled_from(EMAIL_STRINGS))
    written, op, literal = draw(string_comparison(name))
    return Filter(f"{name} {written}", lambda e: compare_string(read(e), op, literal, False))


def any_email(name: str, condition: Filter) -> Filter:
    return Filter(name, lambda p: any(condition.matches(e) for e in p.emails))


@st.composite
def on_emails(draw: st.DrawFn) -> Filter:
    """emails.sub op value, emails op value, or emails[condition]: one email must match."""
    shape = draw(st.sampled_from(["attribute", "value filter"]))
    if shape == "value filter":
        inner = draw(combined(email_condition(), depth=1))
        return any_email(f"emails[{inner.text}]", inner)
    condition = draw(email_condition())
    sub_name = condition.text.split(" ", 1)[0]
    name = draw(
        st.sampled_from([f"emails.{sub_name}"] + (["emails"] if sub_name == "value" else []))
    )
    written = condition.text.split(" ", 1)[1]
    if written == "eq null":
        # Not "an email without one" but "no email with one" (RFC 7643 §2.5).
        read = dict(EMAIL_STRINGS)[sub_name]
        return Filter(f"{name} eq null", lambda p: not any(present(read(e)) for e in p.emails))
    return any_email(f"{name} {written}", condition)


def combined(leaves: st.SearchStrategy[Filter], depth: int = 3) -> st.SearchStrategy[Filter]:
    """Leaves joined by and, or and not, each join in parentheses."""

    def extend(inner: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
        def both(pair: tuple[Filter, Filter], word: str) -> Filter:
            left, right = pair
            if word == "and":
                return Filter(
                    f"({left.text} and {right.text})",
                    lambda x: left.matches(x) and right.matches(x),
                )
            return Filter(
                f"({left.text} or {right.text})", lambda x: left.matches(x) or right.matches(x)
            )

        pairs = st.tuples(inner, inner)
        return st.one_of(
            st.builds(both, pairs, st.just("and")),
            st.builds(both, pairs, st.just("or")),
            inner.map(lambda f: Filter(f"not ({f.text})", lambda x: not f.matches(x))),
        )

    return st.recursive(leaves, extend, max_leaves=depth + 1)


user_filters = combined(
    st.one_of(single_string(), boolean("active", lambda p: p.active), on_emails())
)


# --- The database -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def directory(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An empty database of its own with the tables and one organization; each example writes
    its users in a transaction that is rolled back."""
    if request.param == "sqlite":
        yield from _prepared(make_engine("sqlite://"))
        return
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"blue_fuzz_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(POSTGRES_URL).set(database=name)
        yield from _prepared(make_engine(url.render_as_string(hide_password=False)))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _prepared(engine: Engine) -> Iterator[Engine]:
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            session.add(Organization(id=ORG_ID, name="Fuzz", slug="fuzz"))
        yield engine
    finally:
        engine.dispose()


def rows(person: Person) -> list[Any]:
    """The User row and its email rows, as the service stores them (keys lowered in Python)."""
    user_id = uuid.uuid4()
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    user = User(
        id=user_id,
        org_id=ORG_ID,
        user_name=person.user_name,
        user_name_key=person.user_name.lower(),
        display_name=person.display_name,
        display_name_key=None if person.display_name is None else person.display_name.lower(),
        title=person.title,
        external_id=person.external_id,
        is_active=person.active,
        created_at=moment,
        updated_at=moment,
    )
    values = [
        UserValue(
            org_id=ORG_ID,
            user_id=user_id,
            attribute="emails",
            value=email.value,
            value_key=email.value.lower(),
            type=email.type,
            is_primary=email.primary,
        )
        for email in person.emails
    ]
    return [user, *values]


@profile(short=60)
@given(directory_people=people, chosen=user_filters)
def test_filter_sql_agrees_with_the_rfc(
    directory: Engine, directory_people: list[Person], chosen: Filter
) -> None:
    note(f"filter: {chosen.text}")
    note(f"users: {directory_people}")
    expected = {p.user_name for p in directory_people if chosen.matches(p)}
    with directory.connect() as connection, connection.begin() as transaction:
        with Session(connection) as session:
            for person in directory_people:
                session.add_all(rows(person))
            session.flush()
            query = select(User.user_name).where(User.org_id == ORG_ID, user_filter(chosen.text))
            found = set(session.scalars(query))
        transaction.rollback()
    assert found == expected, chosen.text
