"""SCIM filters and sortBy run as SQL against a real database: SQLite, and PostgreSQL when
BLUE_TEST_DATABASE_URL is set. Every filter is checked against the exact set it must match."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import ColumnElement, Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db import Base, make_engine
from app.models import Group, Membership, Organization, User, UserValue
from scim.filters import (
    MAX_FILTER_LENGTH,
    FilterError,
    group_filter,
    group_sort_key,
    user_filter,
    user_sort_key,
)

POSTGRES_URL = os.environ.get("BLUE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]

ORG_ID = UUID("0a000000-0000-4000-8000-000000000000")
OTHER_ORG_ID = UUID("0b000000-0000-4000-8000-000000000000")

ALICE_ID = UUID("a11ce000-0000-4000-8000-000000000000")
BOB_ID = UUID("b0b00000-0000-4000-8000-000000000000")
CAROL_ID = UUID("ca201000-0000-4000-8000-000000000000")
CARL_ID = UUID("ca210000-0000-4000-8000-000000000000")
DAVE_ID = UUID("da7e0000-0000-4000-8000-000000000000")
ERIN_ID = UUID("e2140000-0000-4000-8000-000000000000")
OTHER_ALICE_ID = UUID("a11ce000-0000-4000-8000-00000000000b")

ENGINEERING_ID = UUID("e4900000-0000-4000-8000-000000000000")
ADMINS_ID = UUID("ad000000-0000-4000-8000-000000000000")
EMPTY_ID = UUID("e3700000-0000-4000-8000-000000000000")
OTHER_ENGINEERING_ID = UUID("e4900000-0000-4000-8000-00000000000b")

ALICE = "Alice"
BOB = "bob"
CAROL = "carol_100%"
CARL = "carolx1000"
DAVE = "dave\\ops"
ERIN = "erin"
EVERYONE = {ALICE, BOB, CAROL, CARL, DAVE, ERIN}

ENGINEERING = "Engineering"
ADMINS = "Admins"
EMPTY = "Empty 50%"
ALL_GROUPS = {ENGINEERING, ADMINS, EMPTY}

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


def at(day: str, time: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=UTC)


def user(user_id: UUID, org_id: UUID, user_name: str, **columns: Any) -> User:
    display_name = columns.get("display_name")
    columns.setdefault("updated_at", columns["created_at"])
    return User(
        id=user_id,
        org_id=org_id,
        user_name=user_name,
        user_name_key=user_name.lower(),
        display_name_key=None if display_name is None else display_name.lower(),
        **columns,
    )


def value(user_id: UUID, attribute: str, text: str, **columns: Any) -> UserValue:
    return UserValue(
        org_id=columns.pop("org_id", ORG_ID),
        user_id=user_id,
        attribute=attribute,
        value=text,
        value_key=text.lower(),
        **columns,
    )


def group(group_id: UUID, org_id: UUID, display_name: str, **columns: Any) -> Group:
    columns.setdefault("updated_at", columns["created_at"])
    return Group(
        id=group_id,
        org_id=org_id,
        display_name=display_name,
        display_name_key=display_name.lower(),
        **columns,
    )


def seed(session: Session) -> None:
    session.add_all(
        [
            Organization(id=ORG_ID, name="Acme", slug="acme"),
            Organization(id=OTHER_ORG_ID, name="Other", slug="other"),
        ]
    )
    session.flush()
    session.add_all(
        [
            user(
                ALICE_ID,
                ORG_ID,
                ALICE,
                external_id="EXT-1",
                display_name="Alice Liddell",
                title="Engineer",
                given_name="Alice",
                family_name="Liddell",
                nick_name="Al",
                profile_url="https://example.com/Alice",
                user_type="Employee",
                preferred_language="en",
                locale="en-US",
                timezone="Europe/Paris",
                employee_number="1001",
                cost_center="CC-1",
                organization_name="Blue",
                division="Platform",
                department="Research",
                primary_email="alice@example.com",
                created_at=at("2024-01-10"),
                updated_at=at("2024-03-01", "00:00"),
                version=3,
            ),
            user(
                BOB_ID,
                ORG_ID,
                BOB,
                external_id="ext-1",
                display_name="Bob Builder",
                given_name="bob",
                family_name="Builder",
                is_active=False,
                department="research",
                manager_id=str(ALICE_ID),
                primary_email="Bob@Home.example",
                created_at=at("2024-02-10"),
            ),
            user(
                CAROL_ID,
                ORG_ID,
                CAROL,
                title="engineer",
                given_name="Carol",
                primary_email="carol@home.example",
                created_at=at("2024-03-10"),
                version=2,
            ),
            user(
                CARL_ID,
                ORG_ID,
                CARL,
                title="Manager",
                display_name="Carl",
                created_at=at("2024-04-10"),
            ),
            user(DAVE_ID, ORG_ID, DAVE, title="", display_name="Dave", created_at=at("2024-05-10")),
            user(ERIN_ID, ORG_ID, ERIN, created_at=at("2024-06-10")),
            # Same userName and externalId in another organization.
            user(
                OTHER_ALICE_ID,
                OTHER_ORG_ID,
                ALICE,
                external_id="EXT-1",
                primary_email="alice@example.com",
                created_at=at("2024-01-10"),
            ),
            group(
                ENGINEERING_ID,
                ORG_ID,
                ENGINEERING,
                external_id="G-1",
                created_at=at("2024-01-01"),
                version=2,
            ),
            group(ADMINS_ID, ORG_ID, ADMINS, external_id="g-2", created_at=at("2024-02-01")),
            group(EMPTY_ID, ORG_ID, EMPTY, created_at=at("2024-03-01")),
            group(OTHER_ENGINEERING_ID, OTHER_ORG_ID, ENGINEERING, created_at=at("2024-01-01")),
        ]
    )
    session.flush()
    session.add_all(
        [
            value(ALICE_ID, "emails", "alice@example.com", type="work", is_primary=True),
            value(ALICE_ID, "emails", "Alice@Home.example", type="home"),
            value(ALICE_ID, "phoneNumbers", "+1 555 0100", type="work"),
            value(ALICE_ID, "roles", "Admin", display="Administrator"),
            value(ALICE_ID, "photos", "https://example.com/Alice.png", type="photo"),
            value(ALICE_ID, "x509Certificates", "MIIBase64=="),
            value(BOB_ID, "emails", "bob@example.com", type="work"),
            value(BOB_ID, "emails", "Bob@Home.example", type="home", is_primary=True),
            value(CAROL_ID, "emails", "carol@home.example", type="home", is_primary=True),
            value(CAROL_ID, "photos", "https://example.com/Photo.png"),
            value(CARL_ID, "roles", "admin"),
            value(DAVE_ID, "emails", "dave@example.com"),
            value(OTHER_ALICE_ID, "emails", "alice@example.com", org_id=OTHER_ORG_ID, type="work"),
            # A row of the other organization pointing at one of ours: only the organization
            # condition inside the EXISTS keeps it out.
            value(ERIN_ID, "emails", "leak@other.example", org_id=OTHER_ORG_ID),
            Membership(group_id=ENGINEERING_ID, user_id=ALICE_ID, org_id=ORG_ID),
            Membership(group_id=ENGINEERING_ID, user_id=BOB_ID, org_id=ORG_ID),
            Membership(group_id=ADMINS_ID, user_id=BOB_ID, org_id=ORG_ID),
            Membership(group_id=OTHER_ENGINEERING_ID, user_id=OTHER_ALICE_ID, org_id=OTHER_ORG_ID),
        ]
    )


def seeded(engine: Engine) -> Iterator[Engine]:
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            seed(session)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def directory(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A database of its own holding two organizations' directories."""
    if request.param == "sqlite":
        # In memory: SQLAlchemy keeps one connection per thread, so the data stays.
        yield from seeded(make_engine("sqlite://"))
        return
    # A database of its own on the server, never the shared one's public schema.
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"blue_filters_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(POSTGRES_URL).set(database=name)
        yield from seeded(make_engine(url.render_as_string(hide_password=False)))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def matching_users(
    engine: Engine, condition: ColumnElement[bool], org_id: UUID = ORG_ID
) -> set[str]:
    with engine.connect() as connection:
        query = select(User.user_name).where(User.org_id == org_id, condition)
        return set(connection.scalars(query))


def matching_groups(engine: Engine, condition: ColumnElement[bool]) -> set[str]:
    with engine.connect() as connection:
        query = select(Group.display_name).where(Group.org_id == ORG_ID, condition)
        return set(connection.scalars(query))


USER_CASES: list[tuple[str, set[str]]] = [
    # userName: caseExact false, compared through user_name_key
    ('userName eq "alice"', {ALICE}),
    ('USERNAME EQ "ALICE"', {ALICE}),
    ('userName ne "alice"', EVERYONE - {ALICE}),
    ('userName co "AROL"', {CAROL, CARL}),
    ('userName gt "c"', {CAROL, CARL, DAVE, ERIN}),
    ('userName lt "B"', {ALICE}),
    ('userName le "BOB"', {ALICE, BOB}),
    ('userName ge "dave"', {DAVE, ERIN}),
    ("userName pr", EVERYONE),
    # % _ and backslashes are plain characters in co, sw and ew
    ('userName sw "carol_"', {CAROL}),
    ('userName co "100%"', {CAROL}),
    ('userName ew "0%"', {CAROL}),
    ('userName co "_"', {CAROL}),
    ('userName co "%"', {CAROL}),
    (r'userName co "\\"', {DAVE}),
    (r'userName co "e\\o"', {DAVE}),
    (r'userName eq "dave\\ops"', {DAVE}),
    ('userName sw "carol" and userName ew "0"', {CARL}),
    # externalId: caseExact
    ('externalId eq "EXT-1"', {ALICE}),
    ('externalId eq "ext-1"', {BOB}),
    ('externalId co "XT"', {ALICE}),
    ('externalId sw "e"', {BOB}),
    ('externalId ew "T-1"', {ALICE}),
    ('externalId gt "a"', {BOB}),
    ("externalId pr", {ALICE, BOB}),
    ('externalId ne "EXT-1"', EVERYONE - {ALICE}),
    # displayName: caseExact false, compared through display_name_key
    ('displayName eq "alice liddell"', {ALICE}),
    ('displayName sw "B"', {BOB}),
    ('displayName co "%"', set()),
    ("displayName pr", {ALICE, BOB, CARL, DAVE}),
    # ne, not and null: an unassigned title is "not equal", and "" is not present
    ('title eq "ENGINEER"', {ALICE, CAROL}),
    ('title ne "engineer"', {BOB, CARL, DAVE, ERIN}),
    ('not (title eq "engineer")', {BOB, CARL, DAVE, ERIN}),
    ("title pr", {ALICE, CAROL, CARL}),
    ("not (title pr)", {BOB, DAVE, ERIN}),
    ("title eq null", {BOB, DAVE, ERIN}),
    ("title ne null", {ALICE, CAROL, CARL}),
    ('title gt "F"', {CARL}),
    ('title lt "f"', {ALICE, CAROL, DAVE}),
    ('not (title lt "f")', {BOB, CARL, ERIN}),
    ('title co ""', {ALICE, CAROL, CARL, DAVE}),
    # other core attributes
    ('name.givenName eq "ALICE"', {ALICE}),
    ('name.familyName sw "lid"', {ALICE}),
    ("name.givenName pr", {ALICE, BOB, CAROL}),
    (f'{USER_SCHEMA}:name.givenName eq "BOB"', {BOB}),
    (f'{USER_SCHEMA}:userName eq "bob"', {BOB}),
    (f'{USER_SCHEMA.upper()}:USERNAME eq "bob"', {BOB}),
    ('nickName eq "al"', {ALICE}),
    ('profileUrl eq "https://example.com/Alice"', {ALICE}),
    ('profileUrl eq "https://example.com/alice"', set()),  # a reference: caseExact
    ('userType eq "employee"', {ALICE}),
    ('preferredLanguage eq "EN"', {ALICE}),
    ('locale sw "EN"', {ALICE}),
    ('timezone ew "/paris"', {ALICE}),
    ("active eq true", EVERYONE - {BOB}),
    ("active eq false", {BOB}),
    ("active ne true", {BOB}),
    ("not (active eq true)", {BOB}),
    ("active pr", EVERYONE),
    # id compares as a UUID; a value that is no UUID is equal to nothing
    (f'id eq "{BOB_ID}"', {BOB}),
    (f'id ne "{BOB_ID}"', EVERYONE - {BOB}),
    ('id eq "not-a-uuid"', set()),
    ('id ne "not-a-uuid"', EVERYONE),
    ('not (id eq "not-a-uuid")', EVERYONE),
    # the enterprise extension, with and without its URN
    (f'{ENTERPRISE}:department eq "RESEARCH"', {ALICE, BOB}),
    ('department eq "research"', {ALICE, BOB}),
    ('employeeNumber eq "1001"', {ALICE}),
    ("employeeNumber eq 1001", {ALICE}),
    ('costCenter eq "cc-1"', {ALICE}),
    ('organization eq "blue"', {ALICE}),
    ("division pr", {ALICE}),
    (f'{ENTERPRISE}:manager.value eq "{ALICE_ID}"', {BOB}),
    (f'manager eq "{str(ALICE_ID).upper()}"', set()),  # manager.value is caseExact
    ("manager pr", {BOB}),
    # multi-valued attributes: one matching value is enough
    ('emails eq "ALICE@example.com"', {ALICE}),
    ('emails.value co "@HOME"', {ALICE, BOB, CAROL}),
    ('emails co "example.com"', {ALICE, BOB, DAVE}),
    ("emails pr", {ALICE, BOB, CAROL, DAVE}),
    ("not (emails pr)", {CARL, ERIN}),
    ("emails eq null", {CARL, ERIN}),
    ('emails.type eq "work"', {ALICE, BOB}),
    ('emails.type ne "work"', {ALICE, BOB, CAROL, DAVE}),
    ("emails.primary eq true", {ALICE, BOB, CAROL}),
    ('emails eq "leak@other.example"', set()),
    ('phoneNumbers.value eq "+1 555 0100"', {ALICE}),
    ("phoneNumbers pr", {ALICE}),
    ('roles eq "ADMIN"', {ALICE, CARL}),
    ('roles.display eq "administrator"', {ALICE}),
    ('photos eq "https://example.com/Photo.png"', {CAROL}),
    ('photos.value eq "https://example.com/photo.png"', set()),  # a reference: caseExact
    ('photos.type eq "PHOTO"', {ALICE}),
    ('x509Certificates.value eq "MIIBase64=="', {ALICE}),
    ('x509Certificates eq "miibase64=="', set()),  # binary: caseExact
    # value paths: every condition inside [...] holds for the same value
    ('emails[type eq "work" and value co "home"]', set()),
    ('emails[type eq "work" and value co "example.com"]', {ALICE, BOB}),
    ('emails[type eq "home" or primary eq true]', {ALICE, BOB, CAROL}),
    ('emails[value eq "alice@example.com" and primary eq true]', {ALICE}),
    ('emails[not (type eq "work")]', {ALICE, BOB, CAROL, DAVE}),
    ("emails[type pr]", {ALICE, BOB, CAROL}),
    ("emails[type eq null]", {DAVE}),
    ('emails[type eq "work"].value ew "@EXAMPLE.COM"', {ALICE, BOB}),
    ('emails[type eq "home"].value sw "bob"', {BOB}),
    ('emails[type eq "work"] eq "ALICE@example.com"', {ALICE}),  # the parser allows it
    ('emails[type eq "work"] and title pr', {ALICE}),
    ('not (emails[type eq "work"])', {CAROL, CARL, DAVE, ERIN}),
    (f'{USER_SCHEMA}:emails[type eq "work"]', {ALICE, BOB}),
    # group membership
    (f'groups eq "{ENGINEERING_ID}"', {ALICE, BOB}),
    (f'groups.value eq "{ADMINS_ID}"', {BOB}),
    (f'groups[value eq "{ADMINS_ID}"]', {BOB}),
    (f'groups eq "{OTHER_ENGINEERING_ID}"', set()),
    ('groups eq "not-a-uuid"', set()),
    ("groups pr", {ALICE, BOB}),
    ("not (groups pr)", {CAROL, CARL, DAVE, ERIN}),
    # meta
    ('meta.created gt "2024-03-01T00:00:00Z"', {CAROL, CARL, DAVE, ERIN}),
    ('meta.created gt "2024-03-01T00:00:00"', {CAROL, CARL, DAVE, ERIN}),
    ('meta.created lt "2024-02-10T10:00:00+02:00"', {ALICE}),
    ('meta.created eq "2024-02-10T09:00:00Z"', {BOB}),
    (
        'meta.created ge "2024-02-10T09:00:00Z" and meta.created le "2024-03-10T09:00:00Z"',
        {BOB, CAROL},
    ),
    ('meta.lastModified ge "2024-03-01"', {ALICE, CAROL, CARL, DAVE, ERIN}),
    (r'meta.version eq "W/\"3\""', {ALICE}),
    (r'meta.version le "W/\"2\""', EVERYONE - {ALICE}),
    ("meta.version gt 1", {ALICE, CAROL}),
    ("meta.version eq 2", {CAROL}),
    ('meta.resourceType eq "User"', EVERYONE),
    ('meta.resourceType eq "Group"', set()),
    ('not (meta.resourceType eq "Group")', EVERYONE),
    # precedence: not, then and, then or; parentheses first
    ('userName eq "bob" or userName eq "alice" and title pr', {ALICE, BOB}),
    ('userName eq "erin" or title pr and active eq false', {ERIN}),
    (
        'userName eq "alice" or userName eq "bob" or userName eq "erin" and active eq false',
        {ALICE, BOB},
    ),
    ('title pr and userName eq "bob" or userName eq "erin"', {ERIN}),
    ('(userName eq "bob" or userName eq "alice") and title pr', {ALICE}),
    ('userName eq "bob" or (userName eq "alice" and title pr)', {ALICE, BOB}),
    (
        'not (userName eq "bob" or userName eq "alice") and active eq true',
        {CAROL, CARL, DAVE, ERIN},
    ),
    ('not (not (userName eq "bob"))', {BOB}),
    ('((userName eq "bob"))', {BOB}),
    ('userName Eq "bob" AnD active EQ false', {BOB}),
]


@pytest.mark.parametrize(("filter_text", "expected"), USER_CASES, ids=[c[0] for c in USER_CASES])
def test_user_filter_matches_exactly(
    directory: Engine, filter_text: str, expected: set[str]
) -> None:
    assert matching_users(directory, user_filter(filter_text)) == expected


GROUP_CASES: list[tuple[str, set[str]]] = [
    ('displayName eq "ENGINEERING"', {ENGINEERING}),
    ('displayName co "50%"', {EMPTY}),
    ('displayName co "5_%"', set()),
    ('displayName sw "a"', {ADMINS}),
    ('displayName gt "b"', {ENGINEERING, EMPTY}),
    (f'{GROUP_SCHEMA}:displayName eq "admins"', {ADMINS}),
    ('externalId eq "G-1"', {ENGINEERING}),
    ('externalId eq "g-1"', set()),
    ("externalId pr", {ENGINEERING, ADMINS}),
    ('externalId ne "G-1"', {ADMINS, EMPTY}),
    (f'members eq "{BOB_ID}"', {ENGINEERING, ADMINS}),
    (f'members.value eq "{ALICE_ID}"', {ENGINEERING}),
    (f'members[value eq "{ALICE_ID}"]', {ENGINEERING}),
    (f'members ne "{BOB_ID}"', {ENGINEERING}),  # some member is not Bob
    (f'members eq "{OTHER_ALICE_ID}"', set()),
    ('members eq "not-a-uuid"', set()),
    ("members pr", {ENGINEERING, ADMINS}),
    ("not (members pr)", {EMPTY}),
    (f'displayName eq "engineering" and not (members eq "{BOB_ID}")', set()),
    (f'id eq "{ADMINS_ID}"', {ADMINS}),
    ('meta.created ge "2024-02-01T00:00:00Z"', {ADMINS, EMPTY}),
    (r'meta.version eq "W/\"2\""', {ENGINEERING}),
    ('meta.resourceType eq "Group"', ALL_GROUPS),
]


@pytest.mark.parametrize(("filter_text", "expected"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_group_filter_matches_exactly(
    directory: Engine, filter_text: str, expected: set[str]
) -> None:
    assert matching_groups(directory, group_filter(filter_text)) == expected


def test_filters_never_reach_into_another_organization(directory: Engine) -> None:
    with directory.connect() as connection:
        ids = connection.scalars(
            select(User.id).where(
                User.org_id == OTHER_ORG_ID, user_filter('emails eq "alice@example.com"')
            )
        )
        assert set(ids) == {OTHER_ALICE_ID}
        ids = connection.scalars(
            select(User.id).where(User.org_id == ORG_ID, user_filter('externalId eq "EXT-1"'))
        )
        assert set(ids) == {ALICE_ID}
    assert (
        matching_users(directory, user_filter(f'groups eq "{ENGINEERING_ID}"'), OTHER_ORG_ID)
        == set()
    )


def test_subqueries_carry_the_organization_and_correlate_on_the_id() -> None:
    users = str(select(User.id).where(user_filter("emails pr and groups pr")))
    assert "user_values.org_id = users.org_id AND user_values.user_id = users.id" in users
    assert "memberships.org_id = users.org_id AND memberships.user_id = users.id" in users
    groups = str(select(Group.id).where(group_filter("members pr")))
    assert "memberships.org_id = groups.org_id AND memberships.group_id = groups.id" in groups


def test_long_chains_of_or_are_one_flat_condition(directory: Engine) -> None:
    filter_text = " or ".join(['title eq "z"'] * 200 + ['userName eq "erin"'])
    assert matching_users(directory, user_filter(filter_text)) == {ERIN}


def test_a_filter_of_the_maximum_length_is_accepted(directory: Engine) -> None:
    prefix = 'userName eq "'
    filter_text = prefix + "x" * (MAX_FILTER_LENGTH - len(prefix) - 1) + '"'
    assert len(filter_text) == MAX_FILTER_LENGTH
    assert matching_users(directory, user_filter(filter_text)) == set()


REFUSED_USER_FILTERS: list[tuple[str, str]] = [
    # unknown attributes never turn into "match everything"
    ('nosuchattr eq "x"', "unknown attribute nosuchattr"),
    ('not (nosuchattr eq "x")', "unknown attribute nosuchattr"),
    ('userName eq "a" or nosuchattr pr', "unknown attribute nosuchattr"),
    ('name.nosuch eq "x"', "unknown attribute name.nosuch"),
    ('emails.nosuch eq "x"', "unknown attribute emails.nosuch"),
    ('emails[nosuch eq "x"]', "unknown attribute emails.nosuch"),
    ('emails[type eq "work"].nosuch eq "x"', "unknown attribute emails.nosuch"),
    ('meta.nosuch eq "x"', "unknown attribute meta.nosuch"),
    ("members pr", "unknown attribute members"),
    (f'{ENTERPRISE}:userName eq "x"', "unknown attribute"),
    (f'{GROUP_SCHEMA}:displayName eq "x"', "unknown schema"),
    ('urn:example:nosuch:userName eq "x"', "unknown schema"),
    # known, but not filterable
    ('addresses.locality eq "x"', "filtering on addresses is not supported"),
    ('addresses[type eq "work"]', "filtering on addresses is not supported"),
    ("addresses pr", "filtering on addresses is not supported"),
    ('password eq "x"', "password"),
    ('name eq "x"', "name is complex"),
    ("meta pr", "meta is complex"),
    ('groups.display eq "Admins"', "not supported"),
    ('manager.displayName eq "x"', "not supported"),
    ('title[value eq "x"]', "not multi-valued"),
    ('emails[type eq "work"][value eq "x"]', "cannot be nested"),
    ('emails.value[type eq "work"]', "[...]"),
    # operators and values that do not fit the attribute
    ("active gt true", "active supports only eq, ne and pr"),
    ('active eq "true"', "boolean"),
    ("userName eq true", "string"),
    ("title gt null", "null"),
    ('id co "a"', "id supports only"),
    ('meta.created co "2024"', "meta.created supports only"),
    ('meta.created gt "yesterday"', "ISO 8601"),
    ('meta.version eq "three"', "version"),
    ("meta.version eq 99999999999", "not a version of ours"),
    ('meta.created gt "0001-01-01T00:00:00+01:00"', "ISO 8601"),
    # malformed
    ("", "empty"),
    ("   ", "empty"),
    ("userName eq", "invalid filter"),
    ('userName xx "a"', "invalid filter"),
    ('(userName eq "a"', "invalid filter"),
    ('userName eq "a" and', "invalid filter"),
    ('userName eq "a")', "invalid filter"),
    ('userName eq "a" "b"', "invalid filter"),
    ('eq "a"', "invalid filter"),
    ('userName eq "a', "unterminated string"),
    ("userName eq 'a'", "invalid filter"),
    (r'userName eq "\q"', "invalid string"),
    ('userName eq "a\\u0000"', "NUL"),
    ('emails[type eq "work"', "invalid filter"),
    ('emails[type eq "work"]]', "invalid filter"),
    ('userName eq "a"\nor title pr', "invalid filter"),
    ("userName eq True", "invalid filter"),
    ("userName eq 1.5.5", "invalid filter"),
    ("not userName pr", "invalid filter"),
    ("x" * (MAX_FILTER_LENGTH + 1), "longer than 4096"),
    ("(" * 2000 + "userName pr" + ")" * 2000, "nested"),
    ("not (" * 600 + "userName pr" + ")" * 600, "nested"),
]


@pytest.mark.parametrize(
    ("filter_text", "detail"), REFUSED_USER_FILTERS, ids=[c[0][:60] for c in REFUSED_USER_FILTERS]
)
def test_user_filter_refuses_what_it_cannot_evaluate(filter_text: str, detail: str) -> None:
    with pytest.raises(FilterError) as raised:
        user_filter(filter_text)
    assert detail in raised.value.detail
    assert str(raised.value) == raised.value.detail


@pytest.mark.parametrize(
    ("filter_text", "detail"),
    [
        ('userName eq "x"', "unknown attribute userName"),
        ("emails pr", "unknown attribute emails"),
        ('members.display eq "x"', "not supported"),
        ('members[display eq "x"]', "not supported"),
        (f'{USER_SCHEMA}:displayName eq "x"', "unknown schema"),
        ("displayName eq", "invalid filter"),
    ],
)
def test_group_filter_refuses_what_it_cannot_evaluate(filter_text: str, detail: str) -> None:
    with pytest.raises(FilterError) as raised:
        group_filter(filter_text)
    assert detail in raised.value.detail


@pytest.mark.parametrize(
    ("sort_by", "only_assigned", "expected"),
    [
        ("userName", None, [ALICE, BOB, CAROL, CARL, DAVE, ERIN]),
        ("meta.created", None, [ALICE, BOB, CAROL, CARL, DAVE, ERIN]),
        ("id", None, [ALICE, BOB, CAROL, CARL, DAVE, ERIN]),
        # caseExact false sorts without case: bob between Alice and Carol
        ("name.givenName", User.given_name, [ALICE, BOB, CAROL]),
        (f"{USER_SCHEMA}:name.givenName", User.given_name, [ALICE, BOB, CAROL]),
        ("emails", User.primary_email, [ALICE, BOB, CAROL]),  # by the primary email
        ("emails.value", User.primary_email, [ALICE, BOB, CAROL]),
        ("title", User.title, [DAVE, ALICE, CAROL, CARL]),
        ("externalId", User.external_id, [ALICE, BOB]),  # caseExact: "EXT-1" < "ext-1"
        (f"{ENTERPRISE}:department", User.department, [ALICE, BOB]),
        ("meta.version", None, [BOB, CARL, DAVE, ERIN, CAROL, ALICE]),
    ],
)
def test_user_sort_key_orders_users(
    directory: Engine, sort_by: str, only_assigned: Any, expected: list[str]
) -> None:
    query = select(User.user_name).where(User.org_id == ORG_ID)
    if only_assigned is not None:  # NULLs sort first on SQLite and last on PostgreSQL
        query = query.where(only_assigned.is_not(None))
    with directory.connect() as connection:
        names = connection.scalars(query.order_by(user_sort_key(sort_by), User.id))
        assert list(names) == expected


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("displayName", [ADMINS, EMPTY, ENGINEERING]),
        ("meta.created", [ENGINEERING, ADMINS, EMPTY]),
        ("meta.lastModified", [ENGINEERING, ADMINS, EMPTY]),
    ],
)
def test_group_sort_key_orders_groups(directory: Engine, sort_by: str, expected: list[str]) -> None:
    query = select(Group.display_name).where(Group.org_id == ORG_ID)
    with directory.connect() as connection:
        assert list(connection.scalars(query.order_by(group_sort_key(sort_by)))) == expected


@pytest.mark.parametrize(
    "sort_by",
    [
        "nosuch",
        "name",
        "name.nosuch",
        "emails.type",
        "groups",
        "addresses",
        "password",
        "meta.resourceType",
        "",
        "userName eq",
        f"{GROUP_SCHEMA}:displayName",
    ],
)
def test_user_sort_key_refuses_unknown_and_unsortable_attributes(sort_by: str) -> None:
    with pytest.raises(FilterError, match="cannot sort by"):
        user_sort_key(sort_by)


@pytest.mark.parametrize("sort_by", ["members", "members.value", "userName", "nosuch"])
def test_group_sort_key_refuses_unknown_and_unsortable_attributes(sort_by: str) -> None:
    with pytest.raises(FilterError, match="cannot sort by"):
        group_sort_key(sort_by)
