"""Alembic environment: runs on a connection handed over by app.migrate, or on the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app import models  # noqa: F401  (registers every table on Base.metadata)
from app.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        user_module_prefix="",
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if given is not None:
    run_on(given)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        run_on(connection)
    engine.dispose()
