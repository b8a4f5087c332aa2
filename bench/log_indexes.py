"""What each prediction_log index costs the log writer: the same rows written through the real
``PredictionLogWriter`` into two SQLite databases migrated to head, one with the old
``ix_prediction_log_created_at`` index put back (it was covered by the leading column of
``ix_prediction_log_created_actual``, and dropped by migration 0007), interleaved rounds.

    .venv/bin/python -m bench.log_indexes [--rows 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from ia_continu.log.rows import LogRow
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine
from ia_continu.store.tables import utcnow


def _rows(n: int, tag: str) -> list[LogRow]:
    now = utcnow()
    return [
        LogRow(
            request_id=f"{tag}-{i:08d}",
            booking_id=None,
            driver_id=None,
            family="classification",
            features="[0.25, -1.5]",
            prediction=1.0,
            confidence=0.87,
            risk_level=None,
            contributing_factors=None,
            model_version="3",
            latency_ms=0.05,
            decision="ml",
            served_by="ml",
            rollout_percentage=100.0,
            ml_prediction=None,
            fallback_prediction=None,
            schema_id=1,
            arm=None,
            challenger_version=None,
            challenger_prediction=None,
            created_at=now,
            updated_at=now,
        )
        for i in range(n)
    ]


def timed_write(writer: PredictionLogWriter, rows: list[LogRow]) -> tuple[float, float]:
    """Hand ``rows`` to a started writer and wait until they are written: this process' CPU
    (the writer thread's work) and the wall time, per row, in µs."""
    cpu, wall = time.process_time(), time.perf_counter()
    writer._queue.extend(rows)  # as submit() leaves them, without building mappings first
    with writer._cond:
        writer._cond.notify()
    assert writer.flush(timeout=600)
    n = len(rows)
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def _write(url: str, rows: list[LogRow]) -> float:
    engine = make_engine(url)
    writer = PredictionLogWriter(engine)
    writer.start()
    cpu, _ = timed_write(writer, rows)
    writer.stop()
    engine.dispose()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls = {}
        for name in ("head", "with_created_at_index"):
            url = f"sqlite:///{Path(tmp) / name}.db"
            engine = make_engine(url)
            migrate.upgrade(engine)
            if name != "head":
                with engine.begin() as conn:
                    conn.execute(
                        text(
                            "CREATE INDEX IF NOT EXISTS ix_prediction_log_created_at"
                            " ON prediction_log (created_at)"
                        )
                    )
            engine.dispose()
            urls[name] = url
        for r in range(args.rounds):
            costs = {n: _write(url, _rows(args.rows, f"{n}{r}")) for n, url in urls.items()}
            old, new = costs["with_created_at_index"], costs["head"]
            print(
                f"round {r}: {args.rows} rows, CPU per row written: with the old index "
                f"{old:.1f} µs, head {new:.1f} µs, {old / new:.2f}x"
            )


if __name__ == "__main__":
    main()
