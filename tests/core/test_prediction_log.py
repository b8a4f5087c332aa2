"""The writer: group commits, nothing lost while the DB is down, spool and replay."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import create_engine, func, select

from ia_continu.models import PredictionLog
from ia_continu.prediction_log import PredictionLogWriter


def _row(i: int) -> dict:
    now = datetime(2026, 1, 1, 12, 0, 0)
    return dict(
        request_id=f"r{i}",
        booking_id=None,
        driver_id=None,
        family="classification",
        features=[float(i), 0.0],
        prediction=1.0,
        confidence=0.9,
        risk_level=None,
        contributing_factors=None,
        model_version="1",
        latency_ms=0.1,
        decision="ml",
        served_by="ml",
        rollout_percentage=100.0,
        ml_prediction=1.0,
        fallback_prediction=None,
        created_at=now,
        updated_at=now,
    )


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(PredictionLog))


def test_group_commit_writes_every_row(engine):
    writer = PredictionLogWriter(engine, batch_size=64, flush_interval=0.01)
    writer.start()
    for i in range(1000):
        writer.submit([_row(i)])
    assert writer.flush(10)
    writer.stop()
    assert _count(engine) == 1000 and writer.written == 1000


def test_db_down_keeps_rows_then_spools_and_replays(engine, tmp_path):
    # A real unreachable database: nothing listens on this port.
    dead = create_engine(
        "postgresql+psycopg://x@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    writer = PredictionLogWriter(
        dead, batch_size=50, flush_interval=0.01, max_pending=1000, spool_dir=tmp_path / "spool"
    )
    writer.start()
    writer.submit([_row(i) for i in range(1500)])
    deadline = 0
    while writer.failed_flushes == 0 and deadline < 500:
        import time

        time.sleep(0.01)
        deadline += 1
    assert writer.last_error is not None  # health can say what is wrong
    writer.stop()  # DB still down: what is left goes to the spool, nothing is dropped
    assert writer.spooled == 1500
    assert sorted(p.suffix for p in (tmp_path / "spool").iterdir()) == [".jsonl"] * len(
        list((tmp_path / "spool").iterdir())
    )

    # The next writer that starts with a reachable DB replays the spool.
    replay = PredictionLogWriter(engine, spool_dir=tmp_path / "spool")
    replay.start()
    replay.stop()
    assert _count(engine) == 1500
    assert list((tmp_path / "spool").iterdir()) == []


@pytest.mark.parametrize("rows", [1, 7])
def test_flush_on_stop_with_long_window(engine, rows):
    writer = PredictionLogWriter(engine, batch_size=10_000, flush_interval=60)
    writer.start()
    writer.submit([_row(i) for i in range(rows)])
    writer.stop()
    assert _count(engine) == rows
