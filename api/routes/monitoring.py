"""The monitoring endpoints under ``/api/ml-monitoring``: figures computed in SQL over the
prediction log of the served family (ia_continu.watch.quality)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import FamilyDep, SessionDep, SettingsDep
from ia_continu.vocab import Task
from ia_continu.watch import estimates, quality

# Mounted at /api/ml-monitoring (the default model) and /models/{model}/monitoring.
router = APIRouter(tags=["monitoring"])

Hours = Annotated[int, Query(ge=1, le=8760, description="window, 1..8760 hours")]
Rows = Annotated[int, Query(ge=1, le=1000, description="rows, 1..1000")]


@router.get("/metrics")
def metrics(family: FamilyDep, session: SessionDep, hours: Hours = 24) -> quality.WindowMetrics:
    return quality.window_metrics(session, family, hours)


@router.get("/daily")
def daily(
    family: FamilyDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=366, description="days, 1..366")] = 7,
) -> list[quality.DayFigures]:
    return quality.daily_metrics(session, family, days)


@router.get("/predictions")
def predictions(
    family: FamilyDep, session: SessionDep, limit: Rows = 100
) -> list[quality.PredictionRecord]:
    records = quality.recent_predictions(session, family.name, limit)
    if family.task != Task.regression:  # class indices are stored; people read labels
        for r in records:
            r.prediction_label = family.label(r.prediction)
            r.actual_label = None if r.actual is None else family.label(r.actual)
    return records


@router.get("/anomalies")
def anomalies(
    settings: SettingsDep,
    session: SessionDep,
    threshold: Annotated[
        float | None,
        Query(
            ge=0,
            le=1e6,
            allow_inf_nan=False,
            description="error above which a prediction is an anomaly; "
            "default IA_CONTINU_ANOMALY_THRESHOLD",
        ),
    ] = None,
    hours: Hours = 24,
    limit: Rows = 100,
) -> quality.Anomalies:
    if threshold is None:
        threshold = settings.anomaly_threshold
    return quality.anomalies(session, settings.family, threshold, hours, limit=limit)


@router.get("/summary")
def summary(settings: SettingsDep, session: SessionDep) -> quality.Summary:
    return quality.summary(session, settings)


@router.get("/estimates")
def performance_estimates(
    settings: SettingsDep, session: SessionDep, hours: Hours = 24
) -> estimates.WindowEstimate:
    """Estimated accuracy (CBPE) or MAE (DLE) of the rows the model answered in the last
    ``hours``, per version, beside the realised metric and the estimation error once outcomes
    are known (README: Estimates before outcomes)."""
    return estimates.estimate_recent(session, settings, hours)
