"""Database engine, declarative base and the unit of work."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic
from typing import Any, TypeVar, cast

from flask import current_app
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    Table,
    Uuid,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from app.errors import ConflictError, UnavailableError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


READ_ONLY = "read_only"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def system_clock() -> datetime:
    """The machine's time, UTC-aware."""
    return datetime.now(UTC)


# What `utcnow` reads: the machine's clock, which tests replace (the clock is outside the
# service, like an IdP) to play weeks of history in a second.
clock: Callable[[], datetime] = system_clock


def utcnow() -> datetime:
    """The current time, UTC-aware."""
    return clock()


# A pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0
# A new PostgreSQL connection whose server does not answer (a host gone in a failover, a
# firewall dropping packets) gives up after this, and the request answers 503, instead of
# waiting out the system's TCP timeout (minutes). A URL's own ?connect_timeout= wins.
CONNECT_TIMEOUT_SECONDS = 5
_IDLE_SINCE = "idle_since"


def make_engine(
    database_url: str,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    statement_timeout_ms: int = 0,
    lock_timeout_ms: int = 0,
    **kwargs: Any,
) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and real transactions (BEGIN IMMEDIATE).

    A server's pooled connection is pinged before use when it has been idle for
    `ping_after_idle` seconds (see _ping_when_idle). On PostgreSQL, every statement of the
    engine's connections is cut off after `statement_timeout_ms` and every wait for a lock
    after `lock_timeout_ms` (0: never), set once per connection, not per request, and a new
    connection is given up after CONNECT_TIMEOUT_SECONDS.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        options = [
            f"-c {name}={value}"
            for name, value in (
                ("statement_timeout", statement_timeout_ms),
                ("lock_timeout", lock_timeout_ms),
            )
            if value and url.get_backend_name() == "postgresql"
        ]
        if options:
            kwargs.setdefault("connect_args", {})["options"] = " ".join(options)
        if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
            kwargs.setdefault("connect_args", {}).setdefault(
                "connect_timeout", CONNECT_TIMEOUT_SECONDS
            )
        engine = create_engine(url, **kwargs)
        _ping_when_idle(engine, ping_after_idle)
        return engine
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over
    # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking
    # on a lock upgrade; SQLite is the single-node embedded store, PostgreSQL scales out.
    # Read-only work (probes, reports) opts out with execution_options(read_only=True).
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: Engine, after_seconds: float) -> None:
    """Ping a pooled connection before use only when it has sat idle (pool_pre_ping, gated).

    The server may have restarted, failed over or dropped a connection while it sat in the pool;
    a dead one is replaced, and the rest of the pool with it, before any request sees it.
    pool_pre_ping did this on every checkout: a round trip per request, several per cent of a
    SCIM lookup. A connection back in use within `after_seconds` is not pinged: if the server
    died in that moment, the request on it fails once, and SQLAlchemy then replaces every pooled
    connection as it would after any lost connection.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or monotonic() - idle_since < after_seconds:
            return  # just connected, or just used
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # The pool replaces this connection and every one older, then retries.
                raise InvalidatePoolError() from error
            raise


def make_sessions(engine: Engine | Any) -> sessionmaker[Session]:
    """The session factory every unit of work is opened from."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def unit_of_work(reads: bool = False) -> AbstractContextManager[Session]:
    """One transaction: commit on success, roll back on error, close either way.

    `reads`: a request that changes nothing of the directory (a SCIM GET). On PostgreSQL its
    statements run in autocommit: under READ COMMITTED each statement takes its own snapshot
    inside a transaction as well, so BEGIN and COMMIT would only add two round trips.
    """
    sessions: sessionmaker[Session] = current_app.extensions["sessions"]
    if reads:
        return _reading_unit(sessions)
    return _writing_unit(sessions)


# What a racer that lost to another transaction's insert of the same name is told.
RACE_LOST = "another request created or changed the same resource at the same moment; retry"


def is_unique_violation(error: IntegrityError) -> bool:
    """Did a unique index refuse the row (not a foreign key or a NOT NULL)?"""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23505")
    return "UNIQUE constraint failed" in str(error.orig)


_T = TypeVar("_T")

# PostgreSQL's answers that mean "not now" rather than "not this": a statement or lock timeout
# (57014, 55P03), a server shutting down (57P0x), a broken connection (08xxx).
UNAVAILABLE_STATES = {"57014": "took too long", "55P03": "waited too long for a lock"}


def unavailable(error: Exception, before_commit: bool) -> UnavailableError | None:
    """The UnavailableError a database failure amounts to, or None when it is a real error."""
    if isinstance(error, PoolTimeoutError):
        return UnavailableError("no database connection is free; retry", before_commit)
    if not isinstance(error, DBAPIError):
        return None
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    lost = (
        error.connection_invalidated or sqlstate.startswith(("08", "57P")) or _no_connection(error)
    )
    if lost:
        found = UnavailableError("the database connection was lost; retry", before_commit)
        found.connection_lost = True
        return found
    if sqlstate in UNAVAILABLE_STATES:
        return UnavailableError(
            f"the request {UNAVAILABLE_STATES[sqlstate]} in the database; retry", before_commit, 2
        )
    if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
        return UnavailableError("the database is busy; retry", before_commit, 2)
    return None


def _no_connection(error: DBAPIError) -> bool:
    """Did the driver fail on its side of the wire (a connection refused or closed while it
    was being opened, as while the server restarts)? psycopg says so with an OperationalError
    that carries no SQLSTATE; SQLite's errors have no `sqlstate` at all."""
    return (
        isinstance(error, OperationalError)
        and hasattr(error.orig, "sqlstate")
        and getattr(error.orig, "sqlstate", None) is None
    )


@contextmanager
def _writing_unit(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction whose lost race on a unique index (checked first, inserted after another
    transaction's same insert) is a ConflictError, as if the check had seen the winner; a
    database that cannot serve it now is an UnavailableError."""
    body_done = False
    try:
        with sessions.begin() as session:
            yield session
            body_done = True
    except IntegrityError as error:
        if is_unique_violation(error):
            raise ConflictError(RACE_LOST) from error
        raise
    except (DBAPIError, PoolTimeoutError) as error:
        found = unavailable(error, before_commit=not body_done)
        if found is None:
            raise
        raise found from error


def once_more_if_lost(attempt: Callable[[], _T]) -> _T:
    """Run a request's unit of work; when its connection was lost before it committed (so
    nothing was written), run it once more on a fresh one (the pool replaced the dead one)."""
    try:
        return attempt()
    except UnavailableError as error:
        if not (error.connection_lost and error.before_commit):
            raise
        return attempt()


@contextmanager
def _reading_unit(sessions: sessionmaker[Session]) -> Iterator[Session]:
    try:
        with sessions.begin() as session:
            bind = session.get_bind()
            # Joined to a caller's connection (tests), the transaction is theirs.
            if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session
    except (DBAPIError, PoolTimeoutError) as error:
        found = unavailable(error, before_commit=True)  # a read changes nothing
        if found is None:
            raise
        raise found from error


@contextmanager
def read_only_unit() -> Iterator[Session]:
    """A transaction that only reads, always rolled back; on PostgreSQL one snapshot for all.

    A report reads in many batches: REPEATABLE READ keeps a user renamed between two batches
    from appearing twice or not at all, and a chain head from running ahead of its events.
    """
    sessions: sessionmaker[Session] = current_app.extensions["sessions"]
    try:
        with sessions() as session:
            bind = session.get_bind()
            # Joined to a caller's connection (tests), the transaction is theirs.
            if isinstance(bind, Engine):
                options: dict[str, Any] = {READ_ONLY: True}
                if bind.dialect.name == "postgresql":
                    options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
                session.connection(execution_options=options)
            try:
                yield session
            finally:
                session.rollback()
    except (DBAPIError, PoolTimeoutError) as error:
        found = unavailable(error, before_commit=True)
        if found is None:
            raise
        raise found from error


class RawJson(str):
    """JSON already serialized, written to a JSON column as it is."""


# Below this many rows an INSERT is as quick as COPY and simpler.
COPY_THRESHOLD = 100


def bulk_insert(session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows of one table: COPY on PostgreSQL, an executemany INSERT elsewhere.

    Every row must carry the same keys; columns left out take their server defaults only.
    """
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        plain = [
            {k: json.loads(v) if isinstance(v, RawJson) else v for k, v in row.items()}
            for row in rows
        ]
        session.execute(insert(model), plain)
        return
    table = cast(Table, model.__table__)
    names = list(rows[0])
    json_columns = {name for name in names if isinstance(table.c[name].type, JSON)}
    as_json = json_texts()
    json_at = [i for i, name in enumerate(names) if name in json_columns]

    def values_of(row: Mapping[str, Any]) -> list[Any]:
        values = [row[name] for name in names]
        for i in json_at:
            values[i] = as_json(values[i])
        return values

    copy_rows(session, model, names, map(values_of, rows))


def json_texts() -> Callable[[Any], Any]:
    """A JSON value's text for COPY, serialized once per value object (None and RawJson as
    they are).

    Rows of a bulk change often share one JSON value object (the same rule's sources): the
    caller's rows keep those objects alive, so their ids are stable keys.
    """
    texts: dict[int, str] = {}

    def as_json(value: Any) -> Any:
        if value is None or isinstance(value, RawJson):
            return value
        text = texts.get(id(value))
        if text is None:
            text = texts[id(value)] = json.dumps(value)
        return text

    return as_json


def copy_rows(
    session: Session, model: type[Base], names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY rows of values, in the order `names` gives, into the model's table (PostgreSQL
    only; JSON values already as text)."""
    table = cast(Table, model.__table__)
    statement = "COPY {} ({}) FROM STDIN".format(
        table.name, ", ".join(f'"{name}"' for name in names)
    )
    # psycopg 3's COPY: the fastest way into PostgreSQL, on the session's own connection.
    raw: Any = session.connection().connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for values in rows:
            copy.write_row(values)


def in_ids(session: Session, column: Any, ids: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL one array parameter (= ANY) instead of one per id."""
    if session.get_bind().dialect.name == "postgresql":
        values = bindparam(None, value=list(ids), type_=ARRAY(Uuid()))
        return cast(ColumnElement[bool], column == any_(values))
    return cast(ColumnElement[bool], column.in_(list(ids)))


class json_rows(FunctionElement[Any]):  # noqa: N801  # named like the SQL functions it renders
    """An aggregate: a JSON array holding one array of the given columns per row, in no order.

    It lets a query carry each row's related rows along (a user's groups on a SCIM page) instead
    of a second statement. Over no rows it is NULL on PostgreSQL and [] on SQLite. UUIDs come back
    as text, hyphenated on PostgreSQL and as 32 hex digits on SQLite: read them with UUID().
    """

    type = JSON()
    name = "json_rows"
    inherit_cache = True


@compiles(json_rows, "postgresql")
def _json_rows_postgresql(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"


@compiles(json_rows)
def _json_rows_sqlite(element: json_rows, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"
