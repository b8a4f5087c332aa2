"""Seed 001's monitoring endpoints under ``/api/ml-monitoring``: figures computed in SQL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from api.deps import RuntimeDep, SessionDep
from ia_continu.watch import quality

router = APIRouter(prefix="/api/ml-monitoring", tags=["monitoring"])


@router.get("/metrics")
def metrics(
    runtime: RuntimeDep,
    session: SessionDep,
    hours: int = Query(24, ge=1, le=8760, description="window, 1..8760 hours"),
) -> dict[str, Any]:
    return quality.window_metrics(session, runtime.settings.family.value, hours)


@router.get("/daily")
def daily(
    runtime: RuntimeDep,
    session: SessionDep,
    days: int = Query(7, ge=1, le=366, description="days, 1..366"),
) -> list[dict[str, Any]]:
    return quality.daily_metrics(session, runtime.settings.family.value, days)


@router.get("/predictions")
def predictions(
    runtime: RuntimeDep,
    session: SessionDep,
    limit: int = Query(100, ge=1, le=1000, description="rows, 1..1000"),
) -> list[dict[str, Any]]:
    return quality.recent_predictions(session, runtime.settings.family.value, limit)


@router.get("/anomalies")
def anomalies(
    runtime: RuntimeDep,
    session: SessionDep,
    threshold: float | None = Query(
        None,
        ge=0,
        le=1e6,
        allow_inf_nan=False,
        description="error above which a prediction is an anomaly; "
        "default IA_CONTINU_ANOMALY_THRESHOLD",
    ),
    hours: int = Query(24, ge=1, le=8760),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    if threshold is None:
        threshold = runtime.settings.anomaly_threshold
    return quality.anomalies(session, runtime.settings.family.value, threshold, hours, limit=limit)


@router.get("/summary")
def summary(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    return quality.summary(session, runtime.settings)
