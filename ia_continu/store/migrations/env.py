"""Alembic environment: runs against the URL handed over by ia_continu.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from ia_continu.store import tables  # noqa: F401  (registers the tables on Base.metadata)
from ia_continu.store.engine import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if url is None:  # ia_continu.store.migrate always sets it
            raise RuntimeError("alembic: no sqlalchemy.url and no connection handed over")
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.begin() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
