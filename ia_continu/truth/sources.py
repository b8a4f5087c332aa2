"""Where actual outcomes come from: a pluggable source, the synthetic world's built-in one, and
the traffic simulator that makes that world happen (the demo and the tests drive it).

A source answers "which of these predictions has a known outcome now?". In production that
is a bookings database or a label queue; here it is the ``synthetic_outcomes`` table, whose
rows become visible ``ground_truth_delay_seconds`` after the prediction, as a ride's delay is
known only once the ride has ended.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.store.tables import Dataset, PredictionLog, SyntheticOutcome, utcnow

if TYPE_CHECKING:
    import httpx


@runtime_checkable
class GroundTruthSource(Protocol):
    """Answers with the outcomes it knows; ids it does not know yet are simply absent."""

    def fetch(self, session: Session, request_ids: list[str]) -> dict[str, float]: ...


class SyntheticOutcomeSource:
    """The built-in source: outcomes the simulator realised, once their time has come."""

    def fetch(self, session: Session, request_ids: list[str]) -> dict[str, float]:
        now = utcnow()
        found: dict[str, float] = {}
        # Chunked: SQLite caps bound parameters, and backfills can hold tens of thousands.
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            rows = session.execute(
                select(SyntheticOutcome.request_id, SyntheticOutcome.actual).where(
                    SyntheticOutcome.request_id.in_(chunk), SyntheticOutcome.available_at <= now
                )
            ).all()
            found.update({rid: float(actual) for rid, actual in rows})
        return found


def get_source(name: str = "synthetic") -> GroundTruthSource:
    """Sources by name, so a deployment parameter can pick one."""
    if name == "synthetic":
        return SyntheticOutcomeSource()
    raise ValueError(f"unknown ground-truth source '{name}' (known: synthetic)")


def pending_request_ids(
    session: Session, family: str, *, max_age_hours: int = 24 * 7, limit: int = 50_000
) -> list[str]:
    """Predictions still waiting for their outcome, oldest first (they are due first)."""
    since = utcnow() - timedelta(hours=max_age_hours)
    return list(
        session.scalars(
            select(PredictionLog.request_id)
            .where(
                PredictionLog.family == family,
                PredictionLog.actual.is_(None),
                PredictionLog.created_at >= since,
            )
            .order_by(PredictionLog.id)
            .limit(limit)
        )
    )


# --- the synthetic world ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Traffic:
    request_ids: list[str]
    features: list[list[float]]
    actuals: list[float]
    drift: float


def draw_traffic(
    family: ModelFamily, n: int, *, drift: float = 0.0, seed: int | None = None, prefix: str = "sim"
) -> Traffic:
    """Requests of the synthetic world: features as the API sees them, outcomes as they happen."""
    rng = np.random.default_rng(seed)
    X, y = family.sample(n, rng=rng, drift=drift)
    tag = uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{tag}-{i}" for i in range(n)]
    return Traffic(ids, X.round(6).tolist(), [float(v) for v in y], drift)


def store_outcomes(
    session: Session,
    settings: Settings,
    request_ids: Iterable[str],
    actuals: Iterable[float],
    *,
    delay_seconds: float | None = None,
) -> int:
    delay = settings.ground_truth_delay_seconds if delay_seconds is None else delay_seconds
    available = utcnow() + timedelta(seconds=delay)
    rows = [
        {"request_id": r, "actual": a, "available_at": available}
        for r, a in zip(request_ids, actuals, strict=True)
    ]
    if rows:
        session.execute(insert(SyntheticOutcome), rows)
    return len(rows)


def simulate_traffic(
    settings: Settings,
    engine,
    http: httpx.Client,
    n: int,
    *,
    drift: float = 0.0,
    seed: int | None = None,
    batch_size: int = 5_000,
    delay_seconds: float | None = None,
) -> Traffic:
    """Send ``n`` synthetic requests to ``/predict/batch`` and record what really happens.

    ``http`` is any httpx client with the API as base URL: a real one for the demo, FastAPI's
    TestClient (an httpx.Client) in the tests. Outcomes are stored before the requests are
    sent, so a backfill can never see a prediction whose outcome is missing for good.
    """
    from ia_continu.store.engine import session_scope

    family = get_family(settings.family)
    traffic = draw_traffic(family, n, drift=drift, seed=seed)
    with session_scope(engine) as session:
        store_outcomes(
            session, settings, traffic.request_ids, traffic.actuals, delay_seconds=delay_seconds
        )
    for start in range(0, n, batch_size):
        stop = start + batch_size
        r = http.post(
            "/predict/batch",
            json={
                "features": traffic.features[start:stop],
                "request_ids": traffic.request_ids[start:stop],
            },
            timeout=60,
        )
        r.raise_for_status()
    return traffic


# --- training data from production -----------------------------------------------------------


def snapshot_labelled(
    session: Session,
    family: ModelFamily,
    *,
    hours: int = 24,
    min_rows: int = 200,
    max_rows: int = 10_000,
) -> int | None:
    """Copy recent predictions that have an outcome into a new dataset; its generation_id.

    This is what makes a retrain after drift useful: the challenger learns from the world as
    it is now, not from the dataset the drifted champion was trained on. None when there are
    too few labelled rows to train on.
    """
    from ia_continu.store.tables import DatasetSample

    since = utcnow() - timedelta(hours=hours)
    rows = session.execute(
        select(PredictionLog.features, PredictionLog.actual)
        .where(
            PredictionLog.family == family.name,
            PredictionLog.actual.is_not(None),
            PredictionLog.created_at >= since,
        )
        .order_by(PredictionLog.id.desc())
        .limit(max_rows)
    ).all()
    if len(rows) < min_rows:
        return None
    now = utcnow()
    dataset = Dataset(
        family=family.name,
        samples_count=len(rows),
        drift=False,
        seed=None,
        hour_generated=now.hour,
        created_at=now,
    )
    session.add(dataset)
    session.flush()
    session.execute(
        insert(DatasetSample),
        [
            {"generation_id": dataset.generation_id, "features": list(f), "target": float(a)}
            for f, a in rows
        ],
    )
    return dataset.generation_id
