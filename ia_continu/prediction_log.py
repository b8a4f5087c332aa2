"""The prediction log writer: group commits off the request path, and nothing answered is lost.

``/predict`` hands its answers to ``submit_chunk`` (an append under a lock, ~1 µs) and answers
at once; the rows themselves are built here, in the writer's thread, off the request path.
A background thread writes them in batches of up to ``batch_size`` rows at least every
``flush_interval`` seconds: one commit per batch instead of one per request, which is what
keeps logging at ~0.9x the throughput of not logging (../shared/STACK.md).

Durability:
- clean shutdown (``stop``) drains the queue before the process exits;
- while the database is unreachable, rows wait in memory and retry with back-off; past
  ``max_pending`` rows, and at shutdown if the DB is still down, they are spooled to a JSONL
  file under the data folder, which the next writer to start (in any process) replays;
- a SIGKILL loses at most what was waiting: one flush interval's worth of rows.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ia_continu.models import PredictionLog

log = logging.getLogger(__name__)

_DATETIME_FIELDS = ("created_at", "updated_at")
_JSON_FIELDS = ("features", "contributing_factors")
# What a prediction row carries when it is logged (the outcome columns come later).
LOG_COLUMNS = (
    "request_id",
    "booking_id",
    "driver_id",
    "family",
    "features",
    "prediction",
    "confidence",
    "risk_level",
    "contributing_factors",
    "model_version",
    "latency_ms",
    "decision",
    "served_by",
    "rollout_percentage",
    "ml_prediction",
    "fallback_prediction",
    "created_at",
    "updated_at",
)


_JSON_POSITIONS = tuple(LOG_COLUMNS.index(c) for c in _JSON_FIELDS)
_TIMESTAMPS = len(LOG_COLUMNS) - 2  # created_at and updated_at close every row
assert LOG_COLUMNS[_TIMESTAMPS:] == _DATETIME_FIELDS


def row_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    """A row as a mapping -> the writer's row: LOG_COLUMNS order, JSON columns encoded."""
    values = [row.get(k) for k in LOG_COLUMNS]
    for i in _JSON_POSITIONS:
        if values[i] is not None:
            values[i] = json.dumps(values[i])
    return tuple(values)


def _sqlite_timestamp(value: Any, cache: dict[datetime, str]) -> Any:
    # SQLAlchemy's own SQLite format (fixed width, so string comparisons order correctly);
    # a chunk shares one timestamp, so it is formatted once.
    if not isinstance(value, datetime):
        return value
    text = cache.get(value)
    if text is None:
        text = cache[value] = value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text


class PredictionLogWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        max_pending: int = 200_000,
        spool_dir: Path | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.spool_dir = spool_dir
        self._queue: deque[tuple[Any, ...]] = deque()
        # Answers not yet expanded into rows (objects with ``rows()`` and ``len()``).
        self._chunks: deque[Any] = deque()
        self._chunk_rows = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._inflight = 0
        self._compiled: str | None = None
        # Figures for /health and /metrics.
        self.written = 0
        self.spooled = 0
        self.failed_flushes = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    # --- producer side (request path) ----------------------------------------------------
    def submit(self, rows: list[dict[str, Any]]) -> None:
        """Queue rows given as mappings (column -> value)."""
        prepared = [row_tuple(row) for row in rows]
        with self._cond:
            self._queue.extend(prepared)
            if len(self._queue) >= self.batch_size:
                self._cond.notify()

    def submit_chunk(self, chunk: Any) -> None:
        """Queue a call's answers; ``chunk.rows()`` (tuples in LOG_COLUMNS order, JSON columns
        encoded, see ``row_tuple``) runs later, in the writer thread."""
        with self._cond:
            self._chunks.append(chunk)
            self._chunk_rows += len(chunk)
            if len(self._queue) + self._chunk_rows >= self.batch_size:
                self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._queue) + self._chunk_rows + self._inflight

    def _expand_chunks(self) -> None:
        with self._cond:
            chunks = list(self._chunks)
            self._chunks.clear()
        rows = [row for chunk in chunks for row in chunk.rows()]
        with self._cond:
            self._queue.extend(rows)
            self._chunk_rows -= len(rows)

    @property
    def healthy(self) -> bool:
        return self.last_error is None

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
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.pending == 0

    # --- consumer side ---------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                waiting = len(self._queue) + self._chunk_rows
                if not waiting and not self._stopping:
                    self._cond.wait(self.flush_interval)
                elif waiting < self.batch_size and not self._stopping and backoff == 0:
                    # Let a batch build up for at most one interval.
                    self._cond.wait(self.flush_interval)
            if self._chunks:
                self._expand_chunks()
            with self._cond:
                if not self._queue:
                    if self._stopping:
                        return
                    continue
                n = min(self.batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
                self._inflight = n
            try:
                self._write(batch)
            except Exception as exc:  # DB down, locked, network...: keep the rows, retry.
                with self._cond:
                    self._queue.extendleft(reversed(batch))
                    self._inflight = 0
                    overflow = self._take_overflow()
                self.failed_flushes += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                self.last_error_at = time.time()
                if overflow:
                    self._spool(overflow)
                if self._stopping:
                    return  # stop() spools what is left
                backoff = min(max(backoff * 2, 0.2), 5.0)
                log.warning(
                    "prediction log: write failed (%s); %d rows pending, retry in %.1fs",
                    self.last_error,
                    self.pending,
                    backoff,
                )
                with self._cond:
                    self._cond.wait(backoff)
                continue
            with self._cond:
                self._inflight = 0
            self.written += len(batch)
            if backoff:
                log.info("prediction log: database reachable again, %d rows pending", self.pending)
                backoff = 0.0
                self.last_error = None
                self._replay_spools()

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        # Straight to the driver's executemany with ready values: through SQLAlchemy's
        # per-row parameter processing, 10,000 rows cost ~4x the CPU.
        if self.engine.dialect.name == "sqlite":
            cache: dict[datetime, str] = {}
            t = _TIMESTAMPS
            rows = [
                (*r[:t], _sqlite_timestamp(r[t], cache), _sqlite_timestamp(r[t + 1], cache))
                for r in rows
            ]
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self._statement(), rows)

    def _statement(self) -> str:
        if self._compiled is None:
            mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            self._compiled = (
                f"INSERT INTO {PredictionLog.__tablename__} ({', '.join(LOG_COLUMNS)}) "
                f"VALUES ({', '.join([mark] * len(LOG_COLUMNS))})"
            )
        return self._compiled

    def _take_overflow(self) -> list[tuple[Any, ...]]:
        extra = len(self._queue) - self.max_pending
        if extra <= 0 or self.spool_dir is None:
            return []
        return [self._queue.pop() for _ in range(extra)][::-1]

    # --- spool -----------------------------------------------------------------------------
    def _spool(self, rows: list[tuple[Any, ...]]) -> None:
        if self.spool_dir is None:
            log.error("prediction log: %d rows lost (no spool folder configured)", len(rows))
            return
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = self.spool_dir / f"spool-{os.getpid()}-{time.time_ns()}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(list(row), default=_encode) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.spooled += len(rows)
        log.warning("prediction log: spooled %d rows to %s", len(rows), path)

    def _replay_spools(self) -> None:
        if self.spool_dir is None or not self.spool_dir.exists():
            return
        for path in sorted(self.spool_dir.glob("spool-*.jsonl")):
            # Claim the file atomically, so two starting workers never replay it twice.
            claimed = path.with_suffix(f".replaying-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue
            rows = [_decode(json.loads(line)) for line in claimed.read_text().splitlines() if line]
            try:
                self._write(rows)  # one transaction: a failure leaves no partial copy
            except Exception:
                claimed.rename(path)  # try again later
                return
            claimed.unlink()
            self.written += len(rows)
            log.info("prediction log: replayed %d spooled rows from %s", len(rows), path.name)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spool {type(value).__name__}")


def _decode(line: Any) -> tuple[Any, ...]:
    if isinstance(line, dict):  # a row spooled as a mapping
        line = list(row_tuple(line))
    for i in range(_TIMESTAMPS, len(LOG_COLUMNS)):
        if isinstance(line[i], str):
            line[i] = datetime.fromisoformat(line[i])
    return tuple(line)
