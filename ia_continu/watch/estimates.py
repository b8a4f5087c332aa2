"""Estimated performance of a window, before its outcomes arrive, beside the realised one.

Over the rows the model answered (``served_by = "ml"``) in a window, grouped by the version
that answered them, each version's estimator (``ia_continu.learn.estimators``: CBPE for
classifiers, DLE for regressors, fitted on its holdout at training) gives every row an
expected value: the probability the prediction is right, or its expected absolute error.
Their mean is the estimated accuracy or MAE:

- ``estimated``: over every row of the window (what the model is doing now, as far as the
  estimator can tell);
- ``estimated_pending``: over the rows still waiting for their outcome;
- ``realised``: the real metric over the rows whose outcome is known, and
  ``estimation_error``: |estimate - realised| over those same rows, which says how far the
  estimate can be trusted. A large one means the relation between features and outcomes has
  moved since training (concept drift): what the estimators cannot see by design.

A version without an estimator (trained before they existed, or whose estimator failed to
fit) is listed with ``status: "unavailable"`` and its realised figures only. The window totals
pool the versions that have an estimator, so estimate and realised always cover the same rows.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn.estimators import CBPE, DLE, PerformanceEstimator, load_estimator
from ia_continu.learn.realign import realign_mixed
from ia_continu.store.tables import EstimateRecord, PredictionLog, utcnow
from ia_continu.vocab import ServedBy, Task
from ia_continu.watch.quality import StoredTime

P = PredictionLog
log = logging.getLogger(__name__)

# The newest rows of a window that are read: beyond it the estimate is over a sample, and
# ``truncated`` says so. Measured on SQLite (2 cores): 100,000 rows take about 1 s for CBPE
# and 4 to 6 s for DLE (decoding the features' JSON, then 100 trees), too long for a route.
MAX_ROWS = 50_000


class EstimateFigures(BaseModel):
    """Estimated and realised metric over some rows (None where no row defines it)."""

    rows: int = Field(0, description="rows answered by the model in the window")
    pending_rows: int = Field(0, description="rows still waiting for their outcome")
    labelled_rows: int = Field(0, description="rows whose outcome is known")
    estimated: float | None = Field(None, description="estimated metric over every row")
    estimated_pending: float | None = Field(
        None, description="estimated metric over the rows waiting for their outcome"
    )
    estimated_labelled: float | None = Field(
        None, description="estimated metric over the rows whose outcome is known"
    )
    realised: float | None = Field(None, description="real metric over the labelled rows")
    estimation_error: float | None = Field(
        None, description="|estimated_labelled - realised|: how far off the estimate was"
    )


class VersionEstimate(EstimateFigures):
    model_version: str
    status: Literal["ok", "unavailable"] = Field(
        description="unavailable: the version has no estimator (realised figures only)"
    )
    method: Literal["cbpe", "dle"] | None = None
    holdout: dict[str, float] | None = Field(
        None,
        description="the estimator on the holdout it was fitted on (rows, realised, estimated:"
        " in-sample, so close by construction)",
    )


class WindowEstimate(EstimateFigures):
    """A window's estimates: pooled over the versions that have an estimator, and per version."""

    model: str
    metric: Literal["accuracy", "mae"]
    method: Literal["cbpe", "dle"]
    higher_is_better: bool
    start: StoredTime
    end: StoredTime
    truncated: bool = Field(False, description=f"only the newest {MAX_ROWS} rows were read")
    versions: list[VersionEstimate] = Field(default_factory=list)

    @classmethod
    def empty(cls, family: ModelFamily, start: datetime, end: datetime) -> WindowEstimate:
        return cls(model=family.name, start=start, end=end, **_kind(family))


def _kind(family: ModelFamily) -> dict[str, object]:
    if family.task == Task.regression:
        return {"metric": DLE.metric, "method": DLE.method, "higher_is_better": False}
    return {"metric": CBPE.metric, "method": CBPE.method, "higher_is_better": True}


def _figures(
    expected: np.ndarray | None, realised: np.ndarray, labelled: np.ndarray
) -> EstimateFigures:
    """``expected`` per row (None: no estimator), ``realised`` per labelled row."""

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None

    out = EstimateFigures(
        rows=len(labelled),
        pending_rows=int((~labelled).sum()),
        labelled_rows=int(labelled.sum()),
        realised=mean(realised),
    )
    if expected is not None:
        out.estimated = mean(expected)
        out.estimated_pending = mean(expected[~labelled])
        out.estimated_labelled = mean(expected[labelled])
        if out.estimated_labelled is not None and out.realised is not None:
            out.estimation_error = abs(out.estimated_labelled - out.realised)
    return out


def _features(
    session: Session,
    family: ModelFamily,
    est: PerformanceEstimator,
    features: list[list[float]],
    schema_ids: list[int | None],
) -> tuple[np.ndarray, np.ndarray] | None:
    """The rows' features in the order the estimator was fitted on, and which rows could be
    read; None when the current declaration lacks one of its features."""
    names = getattr(est, "features", None) or list(family.feature_names)
    position = {name: i for i, name in enumerate(family.feature_names)}
    if any(name not in position for name in names):
        return None
    realigned = realign_mixed(session, features, schema_ids, family)
    return realigned.X[:, [position[n] for n in names]], realigned.kept


def _version(
    session: Session,
    family: ModelFamily,
    version: str,
    rows: list[tuple[float, float, float | None, list[float] | None, int | None]],
) -> tuple[VersionEstimate, np.ndarray | None, np.ndarray, np.ndarray]:
    """One version's figures, and its per-row expected (None: no estimator), realised values
    and labelled mask, for the window's pooled figures."""
    prediction = np.fromiter((r[0] for r in rows), float, len(rows))
    confidence = np.fromiter((r[1] for r in rows), float, len(rows))
    actual = np.array([np.nan if r[2] is None else r[2] for r in rows], float)
    est = load_estimator(session, family.name, version)
    X = None
    if est is not None and est.needs_features:
        read = _features(session, family, est, [r[3] or [] for r in rows], [r[4] for r in rows])
        if read is None:
            est = None
        else:
            X, kept = read
            prediction, confidence, actual = prediction[kept], confidence[kept], actual[kept]
    labelled = ~np.isnan(actual)
    realised_of = (DLE if family.task == Task.regression else CBPE).realised
    realised = realised_of(prediction[labelled], actual[labelled])
    expected = None
    if est is not None:
        try:
            expected = est.expected(prediction, confidence, X)
        except Exception as exc:  # e.g. a model fitted on another number of features
            log.warning("estimator of %s version %s failed: %s", family.name, version, exc)
    figures = _figures(expected, realised, labelled)
    answer = VersionEstimate(
        model_version=version,
        status="unavailable" if expected is None else "ok",
        method=None if expected is None or est is None else est.method,
        holdout=None if est is None else est.holdout,
        **figures.model_dump(),
    )
    return answer, expected, realised, labelled


def estimate_window(
    session: Session, settings: Settings, start: datetime, end: datetime
) -> WindowEstimate | None:
    """Estimated and realised metric of ``settings.family``'s model over ``[start, end)``
    (naive UTC), per version and pooled; None when the model answered no row in it."""
    family = get_family(settings.family, settings)
    needs_features = family.task == Task.regression
    columns = [P.model_version, P.prediction, P.confidence, P.actual]
    if needs_features:
        columns += [P.features, P.schema_id]
    found = session.execute(
        select(*columns)
        .where(
            P.family == family.name,
            P.served_by == ServedBy.ml.value,
            P.created_at >= start,
            P.created_at < end,
        )
        .order_by(P.id.desc())
        .limit(MAX_ROWS + 1)
    ).all()
    if not found:
        return None
    truncated = len(found) > MAX_ROWS
    by_version: dict[str, list[tuple[float, float, float | None, list[float] | None, int | None]]]
    by_version = {}
    for r in found[:MAX_ROWS]:
        extra = (r[4], r[5]) if needs_features else (None, None)
        by_version.setdefault(r[0], []).append((r[1], r[2], r[3], *extra))

    versions: list[VersionEstimate] = []
    pooled: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for version in sorted(by_version, key=_version_order):
        answer, expected, realised, labelled = _version(
            session, family, version, by_version[version]
        )
        versions.append(answer)
        if expected is not None:
            pooled.append((expected, realised, labelled))
    figures = (
        _figures(*(np.concatenate(parts) for parts in zip(*pooled, strict=True)))
        if pooled
        else EstimateFigures()
    )
    return WindowEstimate(
        model=family.name,
        start=start,
        end=end,
        truncated=truncated,
        versions=versions,
        **_kind(family),
        **figures.model_dump(),
    )


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)


def window_bounds(hours: int, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last ``hours`` up to now (naive UTC, as the log stores times)."""
    end = now or utcnow()
    return end - timedelta(hours=hours), end


def estimate_recent(session: Session, settings: Settings, hours: int) -> WindowEstimate:
    """The last ``hours``: ``estimate_window``, or an empty answer when nothing was answered."""
    start, end = window_bounds(hours)
    found = estimate_window(session, settings, start, end)
    if found is None:
        return WindowEstimate.empty(get_family(settings.family, settings), start, end)
    return found


def record_estimates(session: Session, estimate: WindowEstimate) -> int:
    """Keep each version's estimate of the window (``performance_estimates``); returns how
    many rows were written (versions without an estimator are not kept)."""
    start, end = datetime.fromisoformat(estimate.start), datetime.fromisoformat(estimate.end)
    kept = [v for v in estimate.versions if v.status == "ok" and v.method is not None]
    for v in kept:
        session.add(
            EstimateRecord(
                family=estimate.model,
                model_version=v.model_version,
                method=v.method,
                metric=estimate.metric,
                window_start=start,
                window_end=end,
                rows=v.rows,
                pending_rows=v.pending_rows,
                labelled_rows=v.labelled_rows,
                estimated=v.estimated,
                estimated_pending=v.estimated_pending,
                realised=v.realised,
                estimation_error=v.estimation_error,
            )
        )
    return len(kept)
