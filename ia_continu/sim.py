"""The synthetic world's traffic: requests sent to the API, and what really happened to them.

Not part of the loop: a stand-in for real clients and for the real world, used by
``ia-continu demo`` and the tests. It draws requests from the family's generator, stores each
request's true outcome in ``synthetic_outcomes`` with the time it becomes known (as a ride's
delay is known only once the ride has ended), then posts the requests to ``/predict/batch``.
The loop then finds those outcomes the way it would find real ones: through the ground-truth
source ``ia_continu.truth.sources.SyntheticOutcomeSource``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import SyntheticOutcome, utcnow

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Traffic:
    """Requests as the API sees them, and the outcome each one will turn out to have."""

    request_ids: list[str]
    features: list[list[float]]
    actuals: list[float]
    drift: float


def draw_traffic(
    family: ModelFamily, n: int, *, drift: float = 0.0, seed: int | None = None, prefix: str = "sim"
) -> Traffic:
    """``n`` requests of the synthetic world; ``drift`` shifts its features."""
    rng = np.random.default_rng(seed)
    X, y = family.sample(n, rng=rng, drift=drift)
    tag = uuid.uuid4().hex[:8]  # ids unique across calls, so traffic can be sent again
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
    """Record outcomes that become known ``delay_seconds`` from now (the setting by default)."""
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
    engine: Engine,
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
    traffic = draw_traffic(get_family(settings.family), n, drift=drift, seed=seed)
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
