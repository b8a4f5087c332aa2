"""A cross-process mutex, so that two retrains (or promotions) never interleave."""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Hold ``name`` for the duration of the block, in every process that shares the DB.

    PostgreSQL: a session advisory lock, so replicas on other hosts are covered too.
    SQLite: an flock beside the database file (SQLite is single-host by nature).
    """
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(name.encode())
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    db_path = engine.url.database or ""
    lock_path = Path(f"{db_path}.{name}.lock") if db_path and db_path != ":memory:" else None
    if lock_path is None:
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
