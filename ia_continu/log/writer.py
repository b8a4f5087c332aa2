"""The prediction log writer: group commits off the request path, and nothing answered is lost.

``/predict`` hands its answers to ``submit_chunk`` (an append under a lock, ~1 µs) and answers
at once; the rows themselves are built here, in the writer's thread, off the request path.
A background thread writes them in batches of up to ``batch_size`` rows at least every
``flush_interval`` seconds: one commit per batch instead of one per request. A server on one
core keeps 0.79-0.82x of its one-row throughput with logging to SQLite in its own process,
and 0.80-0.93x logging to PostgreSQL, whose server does the inserting (``bench.run``, two
runs; README, Performance).

Durability:
- clean shutdown (``stop``) drains the queue before the process exits;
- while the database is unreachable, rows wait in memory and retry with back-off; past
  ``max_pending`` rows, and at shutdown if the DB is still down, they are spooled to a JSONL
  file under the data folder, which the next writer to start (in any process) replays;
- while the database answers but the writer falls behind (a slow database, bursts of large
  batches), the backlog is bounded the same way: past ``max_pending`` rows the newest calls'
  rows are spooled, and replayed once the backlog is back under half the bound;
- a SIGKILL loses at most what was waiting: one flush interval's worth of rows.

No row can stop the log. A failure is either *transient* (``is_transient``: the DB is down,
locked, timing out, its schema or grants are being fixed) and the batch waits and retries as
above, or *permanent*: the database refuses a value (a NUL in PostgreSQL text, a lone
surrogate no driver can encode, a constraint), and retrying the same batch would fail forever
while every later prediction queued behind it. A permanently failing batch is split in halves
until the refused rows stand alone: the others are written, each refused row goes to the
dead-letter folder (``<data_dir>/dead-letter/*.jsonl``, one JSON line per row: ``at`` (UTC
time), ``error`` and ``row``, the mapping ``submit`` takes, written ASCII-only so any string
is storable). Spool files are replayed the same way, and a replay that fails is put back,
retried, counted (``replay_failures``) and reported by ``/health``.

``dead_lettered`` counts the lines of the dead-letter files, read from the folder itself: the
verdict survives a restart, every worker sees the same figure, and ``/health`` stays
``degraded`` while a line is there. An operator clears it by moving the files away (to keep a
row after all, fix its value and put the line's ``row`` in a ``spool-*.jsonl`` file: it is
replayed at the next start).

A ``request_id`` is not unique here: each call is logged as its own row, so a retried request
appears once per attempt, and an outcome posted for that id applies to every row with it
(``ia_continu.truth.actuals``): a retried request is the same request.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy import types as sa_types

from ia_continu.log.rows import COLUMNS, FIRST_TIMESTAMP, LogRow, RowSource
from ia_continu.store.tables import PredictionLog

if TYPE_CHECKING:
    from ia_continu.config import Settings

log = logging.getLogger(__name__)

# Rows per SQLite INSERT statement: 24 parameters a row stays far below SQLite's limit of
# 32,766 bound parameters a statement.
_SQLITE_ROWS = 500


def sqlite_parts(n: int, full: int = _SQLITE_ROWS) -> list[int]:
    """The statement sizes ``n`` rows are written in: parts of ``full`` rows, then the rest
    in powers of two, largest first (``full`` 500: 1,234 rows -> 500, 500, 128, 64, 32, 8, 2).

    Every distinct size is a statement SQLite compiles and sqlite3 keeps in its per-connection
    cache (up to 128 statements; a 500-row one holds ~1.5 MB). With one statement of exactly
    ``n`` rows, the batch sizes a server's load happens to produce filled that cache: 140-220
    MB of heap a serving process kept after 30 s of one-row load, in three runs of
    bench/memory_growth.py. Here a connection holds at most ``full`` and the 9 powers of two
    below 512 (~3 MB), and what is left of a batch after its full parts takes at most 8
    statements instead of 1."""
    parts = [full] * (n // full)
    rest = n % full
    while rest:
        part = 1 << (rest.bit_length() - 1)
        parts.append(part)
        rest -= part
    return parts


def _copy_type(column: Any) -> str:
    """The PostgreSQL type binary COPY dumps a log column's values as.

    Strings and JSON columns go as text: its bytes are also the binary form of varchar and of
    json (psycopg's json dumper would encode the already-encoded JSON text again)."""
    kind = column.type
    if isinstance(kind, sa_types.DateTime):
        return "timestamp"
    if isinstance(kind, sa_types.Float):
        return "float8"
    if isinstance(kind, sa_types.Integer):
        return "int8" if isinstance(kind, sa_types.BigInteger) else "int4"
    if isinstance(kind, sa_types.String | sa_types.JSON):
        return "text"
    raise TypeError(f"prediction_log.{column.name}: no binary COPY type for {kind!r}")


_COPY_TYPES = [_copy_type(PredictionLog.__table__.c[name]) for name in COLUMNS]

# How long an idle writer waits before trying a spool whose replay failed again.
_REPLAY_RETRY_SECONDS = 5.0


def _sqlite_timestamp(value: Any, cache: dict[Any, str]) -> Any:
    # SQLAlchemy's own SQLite format (fixed width, so string comparisons order correctly);
    # a chunk shares one timestamp, so it is formatted once. isoformat gives the same text
    # as strftime("%Y-%m-%d %H:%M:%S.%f") for these naive UTC times, at a quarter of the cost
    # (a one-row /predict call is a chunk of its own: one formatting per logged row).
    if not isinstance(value, datetime):
        return value
    text = cache.get(value)
    if text is None:
        naive = value if value.tzinfo is None else value.replace(tzinfo=None)
        text = cache[value] = naive.isoformat(" ", "microseconds")
    return text


def is_transient(exc: BaseException) -> bool:
    """True when waiting may fix the failure, False when the database refuses the rows.

    Transient: the connection (refused, dropped, timed out, pool exhausted), a locked or
    read-only SQLite file, a server shutting down or out of resources; also PostgreSQL's
    class 42 (missing table, revoked grant), which no row causes and an operator's fix cures.
    Everything else is permanent: DataError, IntegrityError, a value the driver cannot encode
    (UnicodeEncodeError, ValueError, TypeError), a row too big for an index (class 54).
    """
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    sqlstate = str(getattr(orig, "sqlstate", None) or "")
    if sqlstate.startswith("54"):  # program_limit_exceeded: this row, not the moment
        return False
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    ):
        return True
    if isinstance(exc, sa_exc.ProgrammingError) and sqlstate.startswith("42"):
        return True
    # The driver's own exceptions, unwrapped (the PostgreSQL COPY path; DB-API names them
    # alike).
    names = {cls.__name__ for cls in type(orig).__mro__}
    if names & {"OperationalError", "InterfaceError"}:
        return True
    if "ProgrammingError" in names and sqlstate.startswith("42"):
        return True
    return isinstance(orig, OSError)  # sockets, timeouts (TimeoutError is an OSError)


def describe(exc: BaseException) -> str:
    """One line for logs, /health and the dead-letter: printable ASCII whatever the error
    quotes (a database message may echo the refused value)."""
    lines = str(exc).splitlines()
    text = f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"
    return text.encode("ascii", "backslashreplace").decode("ascii")


class PredictionLogWriter:
    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> PredictionLogWriter:
        """The writer as configured: batch size, flush interval, queue bound, spool folder."""
        return cls(
            engine,
            batch_size=settings.log_batch_size,
            flush_interval=settings.log_flush_interval_ms / 1000,
            max_pending=settings.log_max_pending,
            spool_dir=settings.data_dir / "spool",
        )

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_pending: int = 200_000,
        spool_dir: Path | None = None,
        dead_letter_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.spool_dir = spool_dir
        # Next to the spool unless told otherwise: <data_dir>/spool -> <data_dir>/dead-letter.
        if dead_letter_dir is None and spool_dir is not None:
            dead_letter_dir = spool_dir.parent / "dead-letter"
        self.dead_letter_dir = dead_letter_dir
        self._dead_letter_file: Path | None = None
        self._dead_letter_counts: dict[str, tuple[int, int]] = {}  # name -> (size, lines)
        self._queue: deque[LogRow] = deque()
        # Answers not yet expanded into rows.
        self._chunks: deque[RowSource] = deque()
        self._chunk_rows = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._inflight = 0
        self._batch: list[LogRow] = []
        self._compiled: str | None = None
        self._sqlite_statements: dict[int, str] = {}  # one per part size
        self._backoff = 0.0
        self._replay_at: float | None = None  # monotonic time of the next replay attempt
        self._shed = 0  # rows spooled while the database answered, not replayed yet
        # What the writer did: /health and /metrics show some of these figures; the others
        # (spooled, failed_flushes, refused) are for whoever holds the writer (tests do).
        self.written = 0
        self.spooled = 0
        self.failed_flushes = 0
        self.last_error: str | None = None
        self.refused = 0  # rows the database refused, in this process
        self.last_refusal: str | None = None
        self.lost = 0  # refused rows that could not even be set aside, or never built
        self.replay_failures = 0
        self.replay_error: str | None = None  # set while a spool waits after a failed replay

    # --- producer side (request path) ----------------------------------------------------
    def submit(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows given as mappings (column -> value, see ``LogRow.from_mapping``)."""
        prepared = [LogRow.from_mapping(row) for row in rows]
        with self._cond:
            self._queue.extend(prepared)
            if len(self._queue) >= self.batch_size:
                self._cond.notify()

    def submit_chunk(self, chunk: RowSource) -> None:
        """Queue a call's answers; ``chunk.rows()`` runs later, in the writer thread."""
        with self._cond:
            self._chunks.append(chunk)
            self._chunk_rows += len(chunk)
            if len(self._queue) + self._chunk_rows >= self.batch_size:
                self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._queue) + self._chunk_rows + self._inflight

    def _expand_chunks(self, until: int | None = None) -> None:
        """Build the rows of the queued chunks, oldest first: all of them, or only until the
        queue holds ``until`` rows (the next batch).

        A chunk keeps a call's answers as columns (numpy arrays, the ids' list): ~200 bytes a
        row of a classification batch, whose built rows (tuples, texts, floats) take ~370
        more. While a burst of batch calls outruns the writer (40,000 rows behind after six
        10,000-row calls in a row), building only the next batch's rows keeps the backlog in
        its compact form: the rows built at any time are at most a batch and one call's,
        whatever the backlog. bench/memory_growth.py: less resident after the burst than
        building the whole backlog at once, 4-5 MB (classification, two runs) and 7.5 MB
        (delay, whose rows carry contributing factors; peak 142 MB against 155)."""
        chunks: list[RowSource] = []
        with self._cond:
            queued = len(self._queue)
            while self._chunks and (until is None or queued < until):
                chunks.append(self._chunks.popleft())
                queued += len(chunks[-1])
        rows = self._build(chunks)
        with self._cond:
            self._queue.extend(rows)
            self._chunk_rows -= sum(map(len, chunks))

    def _build(self, chunks: Iterable[RowSource]) -> list[LogRow]:
        """The rows of ``chunks``, in order; a chunk that cannot be built is counted lost."""
        rows: list[LogRow] = []
        for chunk in chunks:
            try:
                rows.extend(chunk.rows())
            except Exception as exc:  # a bug, not a reason to stop logging the others
                self.lost += len(chunk)
                self.last_refusal = describe(exc)
                log.exception("prediction log: %d answered rows could not be built", len(chunk))
        return rows

    @property
    def dead_lettered(self) -> int:
        """Rows set aside in the dead-letter folder (every file, every process, any time)."""
        return self._count_dead_letters()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._replay_spools()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Drain everything to the DB; whatever cannot be written is spooled to disk."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self._expand_chunks()
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
        if left:
            self._spool(left)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is written (tests, /retrain, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify()
        while (self.pending or self._shed) and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.pending == 0 and self._shed == 0

    # --- consumer side ---------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                self._loop()
                return
            except Exception as exc:  # last resort: the thread must outlive any bug
                log.exception("prediction log: writer loop failed; it carries on")
                # The batch in hand is set aside rather than retried: retrying would run into
                # the same bug again, forever (some of its rows may be in the DB already).
                batch, self._batch = self._batch, []
                if batch:
                    self._dead_letter(batch, exc)
                with self._cond:
                    self._inflight = 0
                if self._stopping:
                    return
                time.sleep(0.5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                waiting = len(self._queue) + self._chunk_rows
                if not waiting and not self._stopping:
                    self._cond.wait(self.flush_interval)
                elif waiting < self.batch_size and not self._stopping and self._backoff == 0:
                    # Let a batch build up for at most one interval.
                    self._cond.wait(self.flush_interval)
            if self._chunks and len(self._queue) < self.batch_size:
                self._expand_chunks(until=self.batch_size)
            if self._replay_at is not None and time.monotonic() >= self._replay_at:
                self._replay_spools()  # a spool put back after a failed replay
            with self._cond:
                if not self._queue:
                    if self._stopping:
                        return
                else:
                    n = min(self.batch_size, len(self._queue))
                    self._batch = [self._queue.popleft() for _ in range(n)]
                    self._inflight = n
            if not self._batch:
                continue
            left, exc = self._write_or_isolate(self._batch)
            self._batch = []
            if left:  # DB down, locked, network...: keep the rows, retry.
                with self._cond:
                    self._queue.extendleft(reversed(left))
                    self._inflight = 0
                self.failed_flushes += 1
                self.last_error = describe(exc) if exc is not None else "write failed"
                self._spool_past_bound()  # replayed when the database answers again
                if self._stopping:
                    return  # stop() spools what is left
                self._backoff = min(max(self._backoff * 2, 0.2), 5.0)
                log.warning(
                    "prediction log: write failed (%s); %d rows pending, retry in %.1fs",
                    self.last_error,
                    self.pending,
                    self._backoff,
                )
                with self._cond:
                    self._cond.wait(self._backoff)
                continue
            with self._cond:
                self._inflight = 0
            if self._backoff:
                log.info("prediction log: database reachable again, %d rows pending", self.pending)
                self._backoff = 0.0
                self.last_error = None
                self._replay_spools()
            if self.pending > self.max_pending:
                self._shed_backlog()
            elif self._shed and self.pending <= self.max_pending // 2:
                self._shed = 0
                self._replay_spools()

    def _write_or_isolate(self, rows: list[LogRow]) -> tuple[list[LogRow], BaseException | None]:
        """Write ``rows``; set aside the ones the database refuses (permanent failure).

        Returns the rows still to write and why, when a transient failure stopped it: all of
        them at the first attempt, or those not reached yet while it was isolating bad rows.
        """
        try:
            self._write(rows)
        except Exception as exc:
            if is_transient(exc):
                return rows, exc
            first: BaseException | None = exc
        else:
            self.written += len(rows)
            return [], None
        # Split the failed group in halves, depth first and in order, until the refused rows
        # stand alone. k bad rows among n cost about 2k·log2(n) small transactions. A lone row
        # is tried once more on its own before being set aside.
        todo: deque[tuple[list[LogRow], BaseException | None]] = deque(
            [(rows, None if len(rows) == 1 else first)]
        )
        while todo:
            group, error = todo.popleft()
            if error is None:
                try:
                    self._write(group)
                except Exception as exc:
                    if is_transient(exc):
                        return [r for g, _ in [(group, None), *todo] for r in g], exc
                    error = exc
                else:
                    self.written += len(group)
                    continue
            if len(group) == 1:
                self._dead_letter(group, error)
                continue
            mid = len(group) // 2
            todo.extendleft([(group[mid:], None), (group[:mid], None)])
        return [], None

    def _write(self, rows: list[LogRow]) -> None:
        # Straight to the driver with ready values: through SQLAlchemy's per-row parameter
        # processing, 10,000 rows cost ~4x the CPU.
        dialect = self.engine.dialect
        if dialect.name == "sqlite":
            self._write_sqlite(rows)
        elif dialect.name == "postgresql" and dialect.driver == "psycopg":
            self._write_copy(rows)
        else:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(self._statement(), rows)

    def _write_copy(self, rows: list[LogRow]) -> None:
        """PostgreSQL through psycopg: one binary ``COPY ... FROM STDIN`` a batch.

        Binary COPY sends each value in its column's own form, encoded by psycopg's C code:
        no float or timestamp is written as text for the server to parse back. This process'
        CPU a row: ~1.1-1.5 us, against 4.0-5.0 for text COPY and 11.5-13.2 for executemany
        (in-process, 50,000-row rounds, ``bench/log_copy.py``).

        Binary COPY is stricter about Python types than the server is about text: a str where
        a float or timestamp goes, or a timestamp with a time zone (which the text form lets
        PostgreSQL read, dropping the zone), fails it. A batch it refuses for any reason but a
        transient one is sent again as text COPY, whose outcome then decides, as before: a
        row the server refuses fails the whole COPY, and ``_write_or_isolate`` splits the
        batch. The driver's errors arrive unwrapped by SQLAlchemy here; ``is_transient``
        reads them alike."""
        try:
            self._copy(rows, binary=True)
        except Exception as exc:
            if is_transient(exc):
                raise
            self._copy(rows, binary=False)

    def _copy(self, rows: list[LogRow], *, binary: bool) -> None:
        statement = f"COPY {PredictionLog.__tablename__} ({', '.join(COLUMNS)}) FROM STDIN"
        with self.engine.begin() as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None  # a checked-out connection always has one
            with (
                dbapi.cursor() as cursor,
                cursor.copy(statement + (" (FORMAT BINARY)" if binary else "")) as copy,
            ):
                if binary:
                    copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)

    def _write_sqlite(self, rows: list[LogRow]) -> None:
        """SQLite: one INSERT of many VALUES rows per part (``sqlite_parts``), not executemany.

        sqlite3's executemany releases the GIL around every row's step and takes it back
        after: under load, each time behind the request path's thread, which gives it up
        only at its next system call or switch interval. One statement per part steps once.
        In-process, quiet: 10.4-10.9 us a row against executemany's 12.4-12.6 (125-row
        batches, 100,000 rows already logged); the contended case gains more (bench/)."""
        cache: dict[Any, str] = {}
        t = FIRST_TIMESTAMP
        with self.engine.begin() as conn:
            start = 0
            for size in sqlite_parts(len(rows)):
                part = rows[start : start + size]
                start += size
                values: list[Any] = []
                for r in part:
                    values.extend(r[:t])
                    # A new row's created_at and updated_at are the same object: formatted
                    # once, looked up once (inline: two calls a row showed in the writer).
                    created = r[t]
                    text = cache.get(created)
                    if text is None:
                        text = _sqlite_timestamp(created, cache)
                    values.append(text)
                    updated = r[t + 1]
                    values.append(text if updated is created else _sqlite_timestamp(updated, cache))
                conn.exec_driver_sql(self._sqlite_statement(size), tuple(values))

    def _sqlite_statement(self, n: int) -> str:
        statement = self._sqlite_statements.get(n)
        if statement is None:
            row = f"({', '.join(['?'] * len(COLUMNS))})"
            statement = self._sqlite_statements[n] = (
                f"INSERT INTO {PredictionLog.__tablename__} ({', '.join(COLUMNS)}) "
                f"VALUES {', '.join([row] * n)}"
            )
        return statement

    def _statement(self) -> str:
        if self._compiled is None:
            mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            self._compiled = (
                f"INSERT INTO {PredictionLog.__tablename__} ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join([mark] * len(COLUMNS))})"
            )
        return self._compiled

    def _shed_backlog(self) -> None:
        """The database answers but the writer is more than ``max_pending`` rows behind: the
        rows past the bound are spooled as when it is down, so memory stays bounded whatever
        the load, and replayed once the backlog is back under half the bound (``_loop``), or
        by the next writer to start."""
        spooled = self._spool_past_bound()
        self._shed += spooled
        if spooled:
            log.warning(
                "prediction log: the writer is %d rows behind a database that answers; "
                "spooled the newest %d, replayed when the backlog is under %d",
                self.pending + spooled,
                spooled,
                self.max_pending // 2,
            )

    def _spool_past_bound(self) -> int:
        """Spool the newest rows past ``max_pending`` (the bound counts every row waiting,
        built or still a call's answers): calls' answers from the newest end first, built
        here, then built rows. Only what is spooled is built. Returns the rows spooled."""
        if self.spool_dir is None:
            return 0
        taken: list[RowSource] = []
        with self._cond:
            waiting = len(self._queue) + self._chunk_rows
            while self._chunks and waiting > self.max_pending:
                taken.append(self._chunks.pop())
                self._chunk_rows -= len(taken[-1])
                waiting -= len(taken[-1])
            overflow = self._take_overflow()
        # Built rows are older than the calls still unbuilt; those oldest first.
        rows = overflow + self._build(reversed(taken))
        if not rows:
            return 0
        spooled_before = self.spooled
        self._spool(rows)
        return self.spooled - spooled_before

    def _take_overflow(self) -> list[LogRow]:
        extra = len(self._queue) - self.max_pending
        if extra <= 0 or self.spool_dir is None:
            return []
        return [self._queue.pop() for _ in range(extra)][::-1]

    # --- dead letter -----------------------------------------------------------------------
    def _dead_letter(
        self, rows: Sequence[Any], exc: BaseException | None, what: str = "row"
    ) -> None:
        """Set refused rows aside, one JSON line each, with the error and the time."""
        error = describe(exc) if exc is not None else "refused"
        self.refused += len(rows)
        self.last_refusal = error
        at = datetime.now(UTC).isoformat()
        lines = [
            # ensure_ascii: a lone surrogate or a NUL is written as an escape, so any string
            # the database refused is still storable here.
            json.dumps({"at": at, "error": error, what: _readable(r)}, default=repr) + "\n"
            for r in rows
        ]
        try:
            if self.dead_letter_dir is None:
                raise OSError("no dead-letter folder configured")
            self.dead_letter_dir.mkdir(parents=True, exist_ok=True)
            if self._dead_letter_file is None:
                name = f"prediction-log-{os.getpid()}-{time.time_ns()}.jsonl"
                self._dead_letter_file = self.dead_letter_dir / name
            with open(self._dead_letter_file, "a", encoding="ascii") as fh:
                fh.writelines(lines)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as write_error:
            self.lost += len(rows)
            log.error(
                "prediction log: %d rows refused by the database (%s) and LOST: %s; %s",
                len(rows),
                error,
                describe(write_error),
                "".join(lines)[:2000],
            )
            return
        log.error(
            "prediction log: %d %s(s) refused by the database (%s), set aside in %s",
            len(rows),
            what,
            error,
            self._dead_letter_file,
        )

    def _count_dead_letters(self) -> int:
        folder = self.dead_letter_dir
        if folder is None:
            return 0
        counts: dict[str, tuple[int, int]] = {}
        try:
            entries = [e for e in os.scandir(folder) if e.name.endswith(".jsonl")]
        except FileNotFoundError:
            entries = []
        for entry in entries:
            try:
                size = entry.stat().st_size
                known = self._dead_letter_counts.get(entry.name)
                if known is None or known[0] != size:  # new or grown: count its lines again
                    known = (size, _count_lines(entry.path))
            except FileNotFoundError:  # moved away meanwhile: that is how it is cleared
                continue
            counts[entry.name] = known
        self._dead_letter_counts = counts
        return sum(lines for _, lines in counts.values())

    # --- spool -----------------------------------------------------------------------------
    def _spool(self, rows: list[LogRow]) -> None:
        if self.spool_dir is None:
            log.error("prediction log: %d rows lost (no spool folder configured)", len(rows))
            return
        lines, unspoolable = _spool_lines(rows)
        if unspoolable:
            self._dead_letter(unspoolable, TypeError("value cannot be spooled as JSON"))
        if not lines:
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"spool-{os.getpid()}-{time.time_ns()}.jsonl"
        _write_durably(path, lines)
        self.spooled += len(lines)
        log.warning("prediction log: spooled %d rows to %s", len(lines), path)

    def _replay_spools(self) -> None:
        """Write the spooled rows back; put a file back (and say so) when that fails."""
        try:
            self._replay_spool_files()
        except Exception as exc:  # an unreadable folder, a full disk: say so, keep serving
            self.replay_failures += 1
            self.replay_error = describe(exc)
            self._replay_at = time.monotonic() + _REPLAY_RETRY_SECONDS
            log.exception("prediction log: spool replay failed")

    def _replay_spool_files(self) -> None:
        if self.spool_dir is None or not self.spool_dir.exists():
            self._replay_at = None
            return
        for path in sorted(self.spool_dir.glob("spool-*.jsonl")):
            # Claim the file atomically, so two starting workers never replay it twice.
            claimed = path.with_suffix(f".replaying-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue
            rows: list[LogRow] = []
            unreadable: list[tuple[str, Exception]] = []
            for line in claimed.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
                if not line.strip():
                    continue
                try:
                    rows.append(_decode(json.loads(line)))
                except Exception as torn:  # a torn or hand-edited line: keep it, skip it
                    unreadable.append((line, torn))
            for line, why_unreadable in unreadable:
                self._dead_letter([line], why_unreadable, what="spool_line")
            written_before = self.written
            left, exc = self._write_or_isolate(rows) if rows else ([], None)
            if left:
                # The DB went away: keep what was not written (and only that) for later.
                tmp = claimed.with_suffix(".tmp")
                _write_durably(tmp, _spool_lines(left)[0])
                os.replace(tmp, path)
                claimed.unlink()
                self.replay_failures += 1
                why = describe(exc) if exc is not None else "unknown"
                self.replay_error = f"{len(left)} rows of {path.name} wait: {why}"
                self._replay_at = time.monotonic() + _REPLAY_RETRY_SECONDS
                log.error(
                    "prediction log: replay of %s failed (%s); %d rows kept in the spool, "
                    "retried when the database answers",
                    path.name,
                    why,
                    len(left),
                )
                return
            claimed.unlink()
            replayed = self.written - written_before
            set_aside = len(rows) - replayed
            if set_aside or unreadable:
                self.replay_failures += 1
                log.error(
                    "prediction log: replayed %d rows from %s; %d refused and %d unreadable "
                    "set aside in %s",
                    replayed,
                    path.name,
                    set_aside,
                    len(unreadable),
                    self.dead_letter_dir,
                )
            else:
                log.info("prediction log: replayed %d spooled rows from %s", replayed, path.name)
        self.replay_error = None
        self._replay_at = None


def _readable(row: Any) -> Any:
    """A row as the mapping ``submit`` takes (JSON columns decoded), for the dead-letter."""
    if isinstance(row, LogRow):
        return row.readable()
    if isinstance(row, tuple) and len(row) == len(COLUMNS):
        return LogRow._make(row).readable()
    return row


def _spool_lines(rows: list[LogRow]) -> tuple[list[str], list[LogRow]]:
    lines: list[str] = []
    bad: list[LogRow] = []
    for row in rows:
        try:
            lines.append(json.dumps(list(row), default=_encode) + "\n")
        except (TypeError, ValueError):
            bad.append(row)
    return lines, bad


def _count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def _write_durably(path: Path, lines: list[str]) -> None:
    # json.dumps escapes every non-ASCII character: the files are ASCII whatever the rows hold.
    with open(path, "w", encoding="ascii") as fh:
        fh.writelines(lines)
        fh.flush()
        os.fsync(fh.fileno())


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spool {type(value).__name__}")


# Columns added after the first spool format, all nullable: schema_id, arm,
# challenger_version, challenger_prediction.
_NEWER_COLUMNS = 4


def _decode(line: Any) -> LogRow:
    """A spool line (a JSON list in column order, or a mapping) -> a row."""
    if isinstance(line, dict):  # a row spooled as a mapping
        line = list(LogRow.from_mapping(line))
    elif 0 < (missing := len(COLUMNS) - len(line)) <= _NEWER_COLUMNS:
        # Spooled by an older version: the columns added since (schema_id, then the arm's
        # three) all sit just before the two timestamps, and were NULL then.
        line[-2:-2] = [None] * missing
    for i in range(FIRST_TIMESTAMP, len(COLUMNS)):
        if isinstance(line[i], str):
            line[i] = datetime.fromisoformat(line[i])
    return LogRow._make(line)
