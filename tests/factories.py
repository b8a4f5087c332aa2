"""Factories for prediction-log rows: random but reproducible, written with the real schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert

from ia_continu.store.tables import PredictionLog, utcnow


def prediction_rows(
    family: str,
    n: int,
    *,
    rng: np.random.Generator,
    prefix: str = "r",
    created_at: datetime | None = None,
    shadow: bool = False,
) -> list[dict[str, Any]]:
    """``n`` logged predictions: labels 0/1 for classification, minutes for delay."""
    now = created_at or utcnow()
    if family == "classification":
        prediction = rng.integers(0, 2, n).astype(float)
        other = rng.integers(0, 2, n).astype(float)
    else:
        prediction = rng.normal(10, 4, n)
        other = rng.normal(10, 6, n)
    rows = []
    for i in range(n):
        rows.append(
            {
                "request_id": f"{prefix}{i}",
                "booking_id": f"b-{prefix}{i}",
                "family": family,
                "features": [0.0, 0.0],
                "prediction": float(prediction[i]),
                "confidence": float(rng.uniform(0.5, 1.0)),
                "model_version": "1",
                "latency_ms": float(rng.uniform(0.1, 5.0)),
                "decision": "ml",
                "served_by": "ml",
                "rollout_percentage": 100.0,
                "ml_prediction": float(prediction[i]) if shadow else None,
                "fallback_prediction": float(other[i]) if shadow else None,
                "created_at": now - timedelta(seconds=i),
                "updated_at": now,
            }
        )
    return rows


def insert_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(PredictionLog), rows)


def actuals_for(family: str, rows: list[dict[str, Any]], rng: np.random.Generator) -> list[float]:
    """Outcomes correlated with the predictions, as a real model's would be."""
    if family == "classification":
        flip = rng.random(len(rows)) < 0.2
        return [
            float(1 - r["prediction"]) if f else r["prediction"]
            for r, f in zip(rows, flip, strict=True)
        ]
    return [r["prediction"] + float(rng.normal(0, 3)) for r in rows]
