"""Monitoring figures over the prediction log (seed 001), computed by the database.

Every figure is an aggregate query, the same SQL on SQLite and PostgreSQL: the service never
loads a window's rows into Python, so a week of traffic costs one indexed scan, not memory.

Which rows count:
- ``count``, ``avg_confidence`` and ``avg_prediction_time_ms`` cover every prediction answered
  in the window;
- ``labeled_count`` and the quality metrics (MAE, RMSE, R², accuracy rate, precision, recall,
  F1) cover only the rows whose actual outcome is known;
- ``lift`` covers the shadow rows: both the ML and the fallback answer logged, and an actual.

Every figure is finite: a stored value so large that a sum of squares overflows (a row
written before the API bounded outcomes, or by hand) is left out of that window's figures
rather than turning them into an error or into infinity.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, case, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import get_family
from ia_continu.serve import rollout
from ia_continu.store.tables import PredictionLog, utcnow

P = PredictionLog
log = logging.getLogger(__name__)

# No outcome or prediction can be this large (the API's domain bounds are far tighter);
# squares of anything smaller cannot overflow a float sum.
SANE_LIMIT = 1e100


def _when(cond: ColumnElement[bool], value: Any = 1) -> ColumnElement[Any]:
    return case((cond, value), else_=None)


class _Values:
    """The value columns the aggregates read: as stored, or (``safe``) with any value
    beyond ``SANE_LIMIT`` read as NULL. The safe form costs a CASE per use per row (twice
    the scan time on SQLite), so it only runs when the plain one overflowed."""

    def __init__(self, safe: bool) -> None:
        def value(column: Any) -> Any:
            return case((func.abs(column) <= SANE_LIMIT, column), else_=None) if safe else column

        self.prediction = value(P.prediction)
        self.actual = value(P.actual)
        self.ml_prediction = value(P.ml_prediction)
        self.fallback_prediction = value(P.fallback_prediction)


def _aggregates(session: Session, build: Callable[[bool], Select[Any]]) -> Sequence[Row[Any]]:
    """The rows of ``build(safe=False)``, or of ``build(safe=True)`` when a stored value made
    a sum overflow: PostgreSQL raises "value out of range", SQLite answers infinity."""
    rows: Sequence[Row[Any]] | None
    try:
        if session.get_bind().dialect.name == "postgresql":
            # A failed statement aborts the whole PostgreSQL transaction: keep it contained.
            with session.begin_nested():
                rows = session.execute(build(False)).all()
        else:
            rows = session.execute(build(False)).all()
    except DataError:
        rows = None
    if rows is None or not all(_finite_row(r) for r in rows):
        log.warning("monitoring: values beyond %g in the window are left out", SANE_LIMIT)
        rows = session.execute(build(True)).all()
    return rows


def _finite_row(row: Row[Any]) -> bool:
    return all(math.isfinite(v) for v in row if isinstance(v, float))


# Per-row expressions are what a scan of a million rows pays for (SQLite evaluates each one
# in its bytecode loop), so the aggregates below are the plainest that give the figures:
# sums instead of averages (the average is sum / count, added up across windows in Python),
# no CASE where a NULL already drops out (``prediction - actual`` is NULL without an actual,
# ``actual = 1.0`` is NULL, hence false, without one), the confusion counts only for
# classification.
def _quality_columns(task: str, safe: bool = False) -> list[ColumnElement[Any]]:
    """Aggregates shared by the window and per-day figures (read back by label)."""
    v = _Values(safe)
    diff = v.prediction - v.actual
    columns = [
        func.count().label("count"),
        func.sum(P.confidence).label("sum_confidence"),
        func.sum(P.latency_ms).label("sum_latency_ms"),
        func.count(v.actual).label("labeled"),
        func.sum(func.abs(diff)).label("sum_abs"),
        func.sum(diff * diff).label("ss_res"),
        func.sum(v.actual).label("sum_a"),
        func.sum(v.actual * v.actual).label("sum_a2"),
        func.count(_when(v.actual.is_not(None) & (P.is_accurate == True))).label("accurate"),  # noqa: E712
    ]
    if task == "classification":
        positive_pred, positive_actual = v.prediction == 1.0, v.actual == 1.0
        columns += [
            func.count(_when(positive_pred & positive_actual)).label("tp"),
            func.count(_when(positive_pred & (v.actual != 1.0))).label("fp"),
            func.count(_when((v.prediction != 1.0) & positive_actual)).label("fn"),
        ]
    return columns


def _lift_columns(task: str, safe: bool = False) -> list[ColumnElement[Any]]:
    """The shadow rows (both answers logged, and an actual): their count and, summed over
    them, the ML and the fallback figure (a hit for classification, an absolute error
    otherwise). See ``shadow_lift``."""
    v = _Values(safe)
    ml_known = v.ml_prediction.is_not(None)
    fb_known = v.fallback_prediction.is_not(None)
    if task == "classification":
        # ``x = actual`` is NULL when either is NULL: no separate NOT NULL test needed.
        ml = func.count(_when(fb_known & (v.ml_prediction == v.actual)))
        fb = func.count(_when(ml_known & (v.fallback_prediction == v.actual)))
    else:
        ml = func.sum(func.abs(_when(fb_known, v.ml_prediction - v.actual)))
        fb = func.sum(func.abs(_when(ml_known, v.fallback_prediction - v.actual)))
    return [
        func.count(_when(ml_known & fb_known & v.actual.is_not(None))).label("lift_n"),
        ml.label("lift_ml"),
        fb.label("lift_fb"),
    ]


class _Sums:
    """Two windows' aggregates added up (every column is a count or a sum)."""

    def __init__(self, *rows: Any) -> None:
        for key in rows[0]._mapping:
            values = [r._mapping.get(key) for r in rows]
            values = [v for v in values if v is not None]
            setattr(self, key, sum(values) if values else None)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _finish(row: Any, task: str) -> dict[str, Any]:
    """Turn the sums into figures (a handful of scalars: the rows stayed in the DB)."""
    n, labeled = int(row.count or 0), int(row.labeled or 0)
    out: dict[str, Any] = {
        "count": n,
        "labeled_count": labeled,
        "avg_confidence": _round(_ratio(float(row.sum_confidence or 0.0), n)),
        "avg_prediction_time_ms": _round(_ratio(float(row.sum_latency_ms or 0.0), n)),
        "mae": None,
        "rmse": None,
        "r2": None,
        "accuracy_rate": None,
    }
    if labeled:
        ss_res = float(row.ss_res or 0.0)
        # SS_tot = Σa² - (Σa)²/n: one pass, no sub-query for the mean. Written as mean x Σa,
        # which is at most Σa² (Cauchy-Schwarz): no overflow where (Σa)² would.
        sum_a = float(row.sum_a or 0.0)
        ss_tot = float(row.sum_a2 or 0.0) - (sum_a / labeled) * sum_a
        out["mae"] = _round(float(row.sum_abs or 0.0) / labeled)
        out["rmse"] = _round(math.sqrt(ss_res / labeled))
        # A constant actual has no variance to explain: R² is undefined, not 1 or -inf.
        out["r2"] = _round(1.0 - ss_res / ss_tot) if ss_tot > 1e-12 * max(labeled, 1) else None
        out["accuracy_rate"] = _round(int(row.accurate or 0) / labeled)
    if task == "classification":
        tp, fp, fn = int(row.tp or 0), int(row.fp or 0), int(row.fn or 0)
        precision = _ratio(tp, tp + fp) if labeled else None
        recall = _ratio(tp, tp + fn) if labeled else None
        # scikit-learn's zero_division=0: no positive predicted (or present) scores 0.
        if labeled:
            precision, recall = precision or 0.0, recall or 0.0
        f1 = None
        if labeled:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.update(precision=_round(precision), recall=_round(recall), f1=_round(f1))
    return out


def _round(value: float | None, digits: int = 6) -> float | None:
    # Figures go out as JSON, where NaN and infinity do not exist.
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _task(family: str) -> str:
    return get_family(family).task


def _window(family: str, since: datetime) -> ColumnElement[bool]:
    return and_(P.family == family, P.created_at >= since)


def window_metrics(
    session: Session, family: str, hours: float, *, now: datetime | None = None
) -> dict[str, Any]:
    """Seed 001's ``get_metrics(hours)``: figures over the last ``hours``."""
    since = (now or utcnow()) - timedelta(hours=hours)
    task = _task(family)
    # One range of the (family, created_at) index gives the figures and the shadow lift.
    (row,) = _aggregates(
        session,
        lambda safe: select(*_quality_columns(task, safe), *_lift_columns(task, safe)).where(
            _window(family, since)
        ),
    )
    return _window_figures(row, family, hours, task)


def _window_figures(row: Any, family: str, hours: float, task: str) -> dict[str, Any]:
    out = {"period_hours": hours, "family": family, **_finish(row, task)}
    out["lift"] = _finish_lift(row.lift_n, row.lift_ml, row.lift_fb, task)
    return out


def shadow_lift(session: Session, family: str, since: datetime, task: str) -> dict[str, Any]:
    """ML against the heuristic on the same requests (seed 000's A/B step).

    Regression compares MAE (lift = fallback MAE - ML MAE), classification compares accuracy
    (lift = ML accuracy - fallback accuracy): a positive lift means ML is better.
    """
    ((n, ml, fb),) = _aggregates(
        session, lambda safe: select(*_lift_columns(task, safe)).where(_window(family, since))
    )
    return _finish_lift(n, ml, fb, task)


def _finish_lift(n: Any, ml_sum: Any, fb_sum: Any, task: str) -> dict[str, Any]:
    metric = "accuracy" if task == "classification" else "mae"
    n = int(n or 0)
    ml = float(ml_sum or 0.0) / n if n else None
    fb = float(fb_sum or 0.0) / n if n else None
    lift = None
    if n:
        lift = ml - fb if metric == "accuracy" else fb - ml
    return {
        "count": n,
        "metric": metric,
        "ml": _round(ml),
        "fallback": _round(fb),
        "lift": _round(lift),
    }


def daily_metrics(
    session: Session, family: str, days: int, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One entry per UTC day, oldest first; days without traffic are present with count 0."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time())
    # date() exists on both backends (a string on SQLite, a date on PostgreSQL).
    day = func.date(P.created_at).label("day")
    task = _task(family)
    rows = _aggregates(
        session,
        lambda safe: (
            select(day, *_quality_columns(task, safe)).where(_window(family, since)).group_by(day)
        ),
    )
    by_day = {_as_date(r.day): _finish(r, task) for r in rows}
    empty = _finish(_EmptyRow(), task)
    return [
        {"date": d.isoformat(), **by_day.get(d, empty)}
        for d in (first + timedelta(days=i) for i in range(days))
    ]


class _EmptyRow:
    def __getattr__(self, name: str) -> None:
        return None


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


_PUBLIC = (
    P.id,
    P.request_id,
    P.booking_id,
    P.driver_id,
    P.prediction,
    P.confidence,
    P.risk_level,
    P.contributing_factors,
    P.model_version,
    P.latency_ms,
    P.decision,
    P.served_by,
    P.rollout_percentage,
    P.ml_prediction,
    P.fallback_prediction,
    P.actual,
    P.error,
    P.is_accurate,
    P.created_at,
    P.actual_at,
)


def _public(row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    for key in ("created_at", "actual_at"):
        if d[key] is not None:
            d[key] = d[key].isoformat()
    return d


def recent_predictions(session: Session, family: str, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` predictions, newest first."""
    rows = session.execute(
        select(*_PUBLIC)
        .where(P.family == family)
        .order_by(P.created_at.desc(), P.id.desc())
        .limit(limit)
    ).all()
    return [_public(r) for r in rows]


def anomalies(
    session: Session,
    family: str,
    threshold: float,
    hours: float = 24,
    *,
    limit: int = 100,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Predictions whose error exceeds ``threshold`` in the last ``hours``, worst first.

    ``count`` is every such row; ``anomalies`` lists at most ``limit`` of them.
    """
    since = (now or utcnow()) - timedelta(hours=hours)
    cond = and_(_window(family, since), P.error > threshold)
    count = session.scalar(select(func.count()).where(cond)) or 0
    rows = session.execute(
        select(*_PUBLIC).where(cond).order_by(P.error.desc(), P.id.desc()).limit(limit)
    ).all()
    return {
        "threshold": threshold,
        "period_hours": hours,
        "count": int(count),
        "anomalies": [_public(r) for r in rows],
    }


def summary(session: Session, settings: Settings) -> dict[str, Any]:
    """Seed 001's summary: totals, 24 h and 7 d figures, the rollout, the anomaly count.

    Each row is read once: the last 24 h and the 6 days before are two ranges of the
    (family, created_at) index, each with plain sums (the 7 d figures add both up), the 24 h
    range also counts the anomalies; the total adds the rows older than 7 days, counted on the
    index alone. A CASE per window per aggregate over the whole week would cost more than
    the second range.
    """
    family = settings.family.value
    now = utcnow()
    task = _task(family)
    state = rollout.read_state(session, settings)
    flag_stats = rollout.stats(session, family, state.stats_since)
    since_24h, since_7d = now - timedelta(hours=24), now - timedelta(hours=168)
    threshold = settings.anomaly_threshold

    def columns(safe: bool) -> list[ColumnElement[Any]]:
        return [*_quality_columns(task, safe), *_lift_columns(task, safe)]

    anomaly_count = func.count(_when(P.error > threshold)).label("anomalies")
    (last_24h,) = _aggregates(
        session,
        lambda safe: select(*columns(safe), anomaly_count).where(_window(family, since_24h)),
    )
    (days_2_to_7,) = _aggregates(
        session,
        lambda safe: select(*columns(safe)).where(
            _window(family, since_7d), P.created_at < since_24h
        ),
    )
    older = session.scalar(select(func.count()).where(P.family == family, P.created_at < since_7d))
    week = _Sums(last_24h, days_2_to_7)
    return {
        "family": family,
        "total_predictions": int(older or 0) + int(week.count or 0),
        "metrics_24h": _window_figures(last_24h, family, 24, task),
        "metrics_7d": _window_figures(week, family, 168, task),
        "feature_flags": {
            "ml_enabled": state.enabled,
            "ml_traffic_percentage": state.percentage,
            "fallback_on_error": state.fallback_on_error,
            "shadow_rate": state.shadow_rate,
            "ml_requests": flag_stats["ml_requests"],
            "ml_success_rate": flag_stats["ml_success_rate"],
            "health": rollout.health(flag_stats, state, settings)["status"],
        },
        "anomaly_threshold": threshold,
        "anomalies_count": int(last_24h.anomalies or 0),
        "timestamp": now.isoformat() + "Z",
    }
