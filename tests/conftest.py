"""Fixtures: every database test runs on SQLite and, when BLUE_TEST_DATABASE_URL is set, on
PostgreSQL; the schema is built by the Alembic migrations; each test is rolled back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app import create_app, migrate
from app.config import Environment, Settings
from app.db import make_engine
from app.models import Organization
from tests.support import ScimClient, make_org

POSTGRES_URL = os.environ.get("BLUE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own on the test server, dropped afterwards: parallel
    runs on one server never see each other's rows."""
    assert POSTGRES_URL is not None
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database for this test session on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'blue.db'}"
        return
    with postgres_database("blue_test") as url:
        yield url


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, on the backend under test, with no tables yet (for
    tests that migrate it themselves)."""
    if make_url(database_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with postgres_database("blue_empty") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The migrated database's engine."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        migrate.upgrade(connection=connection)
    yield engine
    engine.dispose()


@pytest.fixture
def separate_database(settings: Settings) -> Iterator[Settings]:
    """Settings of a migrated PostgreSQL database of its own whose transactions really commit,
    dropped afterwards: for concurrency and locking tests (mark them postgresql_only)."""
    if not POSTGRES_URL or make_url(settings.database_url).get_backend_name() != "postgresql":
        raise RuntimeError("separate_database is for postgresql_only tests")
    with postgres_database("blue_race") as url:
        migrate.upgrade(url)
        yield replace(settings, database_url=url)


@pytest.fixture
def committing_engine(separate_database: Settings) -> Iterator[Engine]:
    """An engine on that database, for threads that each run their own transactions."""
    engine = make_engine(separate_database.database_url, pool_size=25, max_overflow=5)
    yield engine
    engine.dispose()


@pytest.fixture
def backend(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        base_url="http://localhost",
        environment=Environment.TEST,
        log_level="INFO",
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Iterator[Flask]:
    """The application bound to one connection whose outer transaction is rolled back."""
    connection = engine.connect()
    outer = connection.begin()
    app = create_app(settings)
    app.extensions["engine"].dispose()
    app.extensions["engine"] = engine
    app.extensions["sessions"] = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield app
    outer.rollback()
    connection.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session in the test's transaction, for service tests and for checking what was written."""
    sessions: sessionmaker[Session] = app.extensions["sessions"]
    with app.app_context(), sessions() as session:
        yield session


@pytest.fixture
def organization(session: Session) -> tuple[Organization, str]:
    return make_org(session, "acme")


@pytest.fixture
def scim(client: FlaskClient, organization: tuple[Organization, str]) -> ScimClient:
    org, secret = organization
    return ScimClient(client, secret, org.id)


@pytest.fixture
def other_scim(client: FlaskClient, session: Session) -> ScimClient:
    org, secret = make_org(session, "globex")
    return ScimClient(client, secret, org.id)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Concurrency and locking tests exist only in their PostgreSQL variant."""
    selected, deselected = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("database_url") == "sqlite"
        if item.get_closest_marker("postgresql_only") and (on_sqlite or callspec is None):
            deselected.append(item)
        else:
            selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
