"""Cross-process mutexes: two retrains never interleave, and every change of the champion
(retrain gate, promote, rollback) happens one at a time, in every process sharing the DB."""

from __future__ import annotations

import fcntl
import random
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

# A waiter polls instead of blocking in pg_advisory_lock: a blocked waiter would pin a pooled
# connection for as long as it waits, and a handful of waiting requests could then starve the
# pool that the holder (and the rest of the service) needs.
_POLL_FIRST, _POLL_MAX = 0.005, 0.1
# Its own generator: the jitter never draws from (or moves) the process-wide ``random``
# state, which callers may have seeded for their own reproducible sequences (Hypothesis,
# in the tests, fails a run whose global random state moved while it drew examples).
_JITTER = random.Random()


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[Connection | None]:
    """Hold ``name`` for the duration of the block, in every process that shares the DB.

    PostgreSQL: a session advisory lock, so replicas on other hosts are covered too. The
    connection holding it is yielded (outside any transaction) so that the work done under the
    lock can run on it rather than check out a second one.
    SQLite: an flock beside the database file (SQLite is single-host by nature); yields None.
    An in-memory SQLite database belongs to one process: nothing to lock, yields None.
    """
    with _hold(engine, name, wait=True) as held:
        yield held if isinstance(held, Connection) else None


@contextmanager
def try_exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Like :func:`exclusive` without waiting: yields False when someone else holds it."""
    with _hold(engine, name, wait=False) as held:
        yield held is not False


@contextmanager
def _hold(engine: Engine, name: str, *, wait: bool) -> Iterator[Connection | bool | None]:
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(name.encode())
        conn = _pg_acquire(engine, key, wait)
        if conn is None:
            yield False
            return
        try:
            yield conn
        finally:
            _pg_release(conn, key)
        return
    db_path = engine.url.database or ""
    if not db_path or db_path == ":memory:":
        yield None
        return
    with open(f"{db_path}.{name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield None
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pg_acquire(engine: Engine, key: int, wait: bool) -> Connection | None:
    delay = _POLL_FIRST
    while True:
        conn = engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()  # the lock outlives the transaction; callers start clean
        except BaseException:
            # The lock may have been taken before the failure: only ending the server
            # session is sure to release it.
            conn.invalidate()
            conn.close()
            raise
        if got:
            return conn
        conn.close()
        if not wait:
            return None
        time.sleep(delay * _JITTER.uniform(0.5, 1.5))  # jitter: waiters do not retry in step
        delay = min(delay * 2, _POLL_MAX)


def _pg_release(conn: Connection, key: int) -> None:
    try:
        if conn.in_transaction():  # work left uncommitted under the lock is not kept
            conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        conn.commit()
    except Exception:
        # Returned to the pool, a connection that failed to unlock would hold the lock
        # forever; discarded, its server session ends and the lock with it.
        conn.invalidate()
    finally:
        conn.close()
