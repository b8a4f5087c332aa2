"""Benchmark data: a trained champion, and a million logged predictions inserted in bulk.

The bulk insert bypasses the ORM on purpose (sqlite3 ``executemany`` / PostgreSQL ``COPY``):
it only prepares the state to measure, and must not dominate the run.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
from sqlalchemy import Engine

from ia_continu.config import Settings
from ia_continu.families import get_family
from ia_continu.learn.datasets import generate_dataset
from ia_continu.learn.training import RetrainResult, retrain
from ia_continu.store import migrate
from ia_continu.store.engine import make_engine, session_scope
from ia_continu.store.tables import utcnow

COLUMNS = (
    "request_id", "booking_id", "driver_id", "family", "features", "prediction", "confidence",
    "risk_level", "contributing_factors", "model_version", "latency_ms", "decision", "served_by",
    "rollout_percentage", "ml_prediction", "fallback_prediction", "actual", "error",
    "is_accurate", "created_at", "actual_at", "updated_at",
)  # fmt: skip


def prepare(settings: Settings, *, samples: int = 10_000, seed: int = 7) -> Engine:
    """Migrate the DB and store one dataset of ``samples`` rows (seeded, no drift)."""
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    family = get_family(settings.family)
    with session_scope(engine) as session:
        generate_dataset(session, family, samples, drift=False, seed=seed)
    return engine


def timed_retrain(settings: Settings, engine: Engine) -> tuple[float, RetrainResult]:
    started = time.perf_counter()
    result = retrain(settings, engine, reason="bench")
    return time.perf_counter() - started, result


def one_row(family_name: str) -> list[float]:
    X, _ = get_family(family_name).sample(1, rng=np.random.default_rng(3))
    return [round(v, 4) for v in X[0].tolist()]


def rows(family_name: str, n: int, *, seed: int = 11) -> list[list[float]]:
    X, _ = get_family(family_name).sample(n, rng=np.random.default_rng(seed))
    return X.round(4).tolist()


def insert_predictions(
    engine: Engine,
    family_name: str,
    n: int,
    *,
    labeled_share: float = 0.8,
    days: float = 7.0,
    chunk: int = 100_000,
    seed: int = 5,
) -> list[str]:
    """Insert ``n`` logged predictions spread over the last ``days``; returns the ids of the
    rows left without an actual (newest last), for the backfill benchmark."""
    family = get_family(family_name)
    rng = np.random.default_rng(seed)
    now = utcnow()
    unlabeled: list[str] = []
    run = uuid.uuid4().hex[:8]
    raw = engine.raw_connection()
    try:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            X, y = family.sample(m, rng=rng)
            if family.task == "classification":
                pred = (rng.random(m) < 0.5).astype(float)
                pred = np.where(rng.random(m) < 0.85, y, pred)
                actual = y
            else:
                actual = y
                pred = y + rng.normal(0, 2.0, m)
            conf = rng.uniform(0.5, 1.0, m)
            if family.task == "classification":
                fallback = (rng.random(m) < 0.5).astype(float)
            else:
                fallback = actual + rng.normal(0, 4.0, m)
            lat = rng.uniform(0.2, 3.0, m)
            # Oldest first, so ids grow with time like real traffic.
            ages = days * 86400 * (1 - (start + np.arange(m) + rng.random(m)) / n)
            labeled = rng.random(m) < labeled_share
            shadow = rng.random(m) < 0.1
            # Column-wise with numpy, then one zip: a Python loop per row costs minutes.
            created = np.datetime64(now, "us") - (ages * 1e6).astype("timedelta64[us]")
            if engine.dialect.name == "sqlite":
                # SQLAlchemy's own SQLite storage format, so string comparisons order right.
                stamps = np.char.replace(np.datetime_as_string(created, unit="us"), "T", " ")
                stamps = stamps.tolist()
            else:
                stamps = created.tolist()
            err = np.abs(pred - actual)
            acc = family.accurate(pred, actual)
            ids = [f"b{run}-{k}" for k in range(start, start + m)]
            unlabeled.extend(np.asarray(ids)[~labeled].tolist())
            feats = [f"[{a}, {b}]" for a, b in X[:, :2].round(4).tolist()]
            if X.shape[1] != 2:
                feats = [json.dumps(r) for r in X.round(4).tolist()]
            lab = labeled.tolist()
            actual_l = np.where(labeled, actual, np.nan).tolist()
            err_l = np.where(labeled, err, np.nan).tolist()
            fb_l = np.where(shadow, fallback, np.nan).tolist()
            pred_l, acc_l = pred.tolist(), acc.tolist()
            out = [
                (rid, None, None, family_name, f, p, c, None, None, "1", la, "ml", "ml", 100.0,
                 p, None if fb != fb else fb, a if h else None, e if h else None,
                 ac if h else None, t, t if h else None, t)
                for rid, f, p, c, la, fb, a, e, ac, h, t in zip(
                    ids, feats, pred_l, conf.tolist(), lat.tolist(), fb_l, actual_l, err_l,
                    acc_l, lab, stamps, strict=True)
            ]  # fmt: skip
            _write(raw, engine.dialect.name, out)
        raw.commit()
    finally:
        raw.close()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE prediction_log")
            conn.commit()
    return unlabeled


def _write(raw, dialect: str, out: list[tuple]) -> None:
    cursor = raw.cursor()
    cols = ", ".join(COLUMNS)
    if dialect == "postgresql":
        with cursor.copy(f"COPY prediction_log ({cols}) FROM STDIN") as copy:
            for row in out:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * len(COLUMNS))
        cursor.executemany(
            f"INSERT INTO prediction_log ({cols}) VALUES ({marks})",
            out,
        )
    cursor.close()
