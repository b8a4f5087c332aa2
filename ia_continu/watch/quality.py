"""How good the served model is: figures over the prediction log, computed by the database.

Every figure is an aggregate query, the same SQL on SQLite and PostgreSQL: the service never
loads a window's rows into Python, so a week of traffic costs one indexed scan, not memory.

Which rows count:
- ``count``, ``avg_confidence`` and ``avg_prediction_time_ms`` cover every prediction answered
  in the window;
- ``labeled_count`` and the quality figures cover only the rows whose actual outcome is
  known: the accuracy rate for every task, MAE, RMSE and R² for a regressor (None for a
  classifier, whose predictions are class indices: an error between indices means nothing),
  precision, recall and F1 for a classifier (macro averages for more than two classes);
- ``lift`` covers the shadow rows: both the ML and the fallback answer logged, and an actual.

What depends on the task (the classifier's figures, how the lift compares ML with the
fallback) comes from the family's rules (``ModelFamily.rules``).

Every figure is finite: a stored value so large that a sum of squares overflows (a row
written before the API bounded outcomes, or by hand) is left out of that window's figures
rather than turning them into an error or into infinity.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from sqlalchemy import ColumnElement, Row, Select, and_, case, func, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.families.tasks import COMMON_LIMITS, TaskRules, when
from ia_continu.serve.flag import read_state
from ia_continu.store.tables import PredictionLog, utcnow
from ia_continu.watch.rollout_health import rollout_stats, verdict

P = PredictionLog
log = logging.getLogger(__name__)

# No outcome or prediction can be this large (the API's domain bounds are far tighter);
# squares of anything smaller cannot overflow a float sum.
SANE_LIMIT = 1e100


# --- what the figures look like --------------------------------------------------------------


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# A stored instant as ISO 8601 text: UTC, without an offset, as the database keeps it (so not
# a JSON Schema "date-time", which requires one).
StoredTime = Annotated[str, BeforeValidator(_iso)]


class Figures(BaseModel):
    """A window's figures; None where the rows do not define one (no outcome known yet)."""

    # Figures only some tasks have: left out of the answer for the other tasks, not null.
    TASK_FIGURES: ClassVar[tuple[str, ...]] = ("precision", "recall", "f1")

    count: int = 0
    labeled_count: int = 0
    avg_confidence: float | None = None
    avg_prediction_time_ms: float | None = None
    mae: float | None = None
    rmse: float | None = None
    r2: float | None = None
    accuracy_rate: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None

    # No return annotation on purpose: pydantic would take it as the JSON schema of the model.
    @model_serializer(mode="wrap")
    def _only_the_tasks_figures(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        for name in self.TASK_FIGURES:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data


class Lift(BaseModel):
    """ML against the fallback on the same requests (the shadow rows): the task's ``metric``
    (``accuracy`` or ``mae``) of each, and by how much ML is better (positive: ML wins)."""

    count: int
    metric: str
    ml: float | None
    fallback: float | None
    lift: float | None


class WindowMetrics(Figures):
    """The figures of the last ``period_hours``."""

    period_hours: int
    family: str
    lift: Lift


class DayFigures(Figures):
    """The figures of one UTC day (``date``: YYYY-MM-DD)."""

    date: str


class PredictionRecord(BaseModel):
    """One logged prediction as the monitoring endpoints list it (read from its row)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    request_id: str
    booking_id: str | None
    driver_id: str | None
    prediction: float
    confidence: float
    risk_level: str | None
    contributing_factors: dict[str, float] | None
    model_version: str
    latency_ms: float
    decision: str
    served_by: str
    rollout_percentage: float | None
    ml_prediction: float | None
    fallback_prediction: float | None
    actual: float | None
    error: float | None
    is_accurate: bool | None
    # Classifiers: the stored class index as the API answers it ("versicolor" for 1.0).
    prediction_label: int | str | None = None
    actual_label: int | str | None = None
    created_at: StoredTime
    actual_at: StoredTime | None


class Anomalies(BaseModel):
    """Predictions whose error is above ``threshold``: ``count`` of them, the worst listed."""

    threshold: float
    period_hours: int
    count: int
    anomalies: list[PredictionRecord]


class RolloutFigures(BaseModel):
    """The rollout flag and how ML has answered since the flag's stats were reset."""

    ml_enabled: bool
    ml_traffic_percentage: float
    fallback_on_error: bool
    shadow_rate: float
    ml_requests: int
    ml_success_rate: float
    health: str


class Summary(BaseModel):
    """Totals, the 24 h and 7 d figures, the rollout, and the anomalies of the last 24 h."""

    family: str
    total_predictions: int
    metrics_24h: WindowMetrics
    metrics_7d: WindowMetrics
    feature_flags: RolloutFigures
    anomaly_threshold: float
    anomalies_count: int
    timestamp: str
    targets: dict[str, float] = Field(
        default_factory=dict,
        description="the limit of each figure the performance alert judges, by figure name "
        "(accuracy_rate, avg_prediction_time_ms, and the task's: mae/rmse/r2 or f1)",
    )


# --- the SQL ----------------------------------------------------------------------------------


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
# ``actual = 1.0`` is NULL, hence false, without one), the task's own sums only for its task.
def _quality_columns(rules: TaskRules, safe: bool = False) -> list[ColumnElement[Any]]:
    """Aggregates shared by the window and per-day figures (read back by label)."""
    v = _Values(safe)
    columns: list[ColumnElement[Any]] = [
        func.count().label("count"),
        func.sum(P.confidence).label("sum_confidence"),
        func.sum(P.latency_ms).label("sum_latency_ms"),
        func.count(v.actual).label("labeled"),
        func.count(when(v.actual.is_not(None) & (P.is_accurate == True))).label("accurate"),  # noqa: E712
        *rules.figure_sums(v.prediction, v.actual),
    ]
    if rules.numeric_errors:
        diff = v.prediction - v.actual
        columns += [
            func.sum(func.abs(diff)).label("sum_abs"),
            func.sum(diff * diff).label("ss_res"),
            func.sum(v.actual).label("sum_a"),
            func.sum(v.actual * v.actual).label("sum_a2"),
        ]
    return columns


def _lift_columns(rules: TaskRules, safe: bool = False) -> list[ColumnElement[Any]]:
    """The shadow rows (both answers logged, and an actual): their count and, summed over
    them, the ML and the fallback figure of the task's lift metric."""
    v = _Values(safe)
    ml_known = v.ml_prediction.is_not(None)
    fb_known = v.fallback_prediction.is_not(None)
    return [
        func.count(when(ml_known & fb_known & v.actual.is_not(None))).label("lift_n"),
        rules.lift_sum(v.ml_prediction, v.actual, fb_known).label("lift_ml"),
        rules.lift_sum(v.fallback_prediction, v.actual, ml_known).label("lift_fb"),
    ]


def _window(family: str, since: datetime) -> ColumnElement[bool]:
    return and_(P.family == family, P.created_at >= since)


# --- from sums to figures ---------------------------------------------------------------------


class _Sums(Mapping[str, Any]):
    """An aggregate row read by label. Several rows (windows of the same columns, each a count
    or a sum) are added up; no row at all is an empty window, where every label reads None."""

    def __init__(self, *rows: Row[Any]) -> None:
        self._values: dict[str, Any] = dict(rows[0]._mapping) if len(rows) == 1 else {}
        for key in rows[0]._mapping if len(rows) > 1 else ():
            values = [v for r in rows if (v := r._mapping.get(key)) is not None]
            self._values[key] = sum(values) if values else None

    def __getitem__(self, key: str) -> Any:
        return self._values.get(key)

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _round(value: float | None, digits: int = 6) -> float | None:
    # Figures go out as JSON, where NaN and infinity do not exist.
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _figures(sums: Mapping[str, Any], rules: TaskRules) -> dict[str, Any]:
    """Turn the sums into figures (a handful of scalars: the rows stayed in the DB)."""
    n, labeled = int(sums["count"] or 0), int(sums["labeled"] or 0)
    out: dict[str, Any] = {
        "count": n,
        "labeled_count": labeled,
        "avg_confidence": _round(_ratio(float(sums["sum_confidence"] or 0.0), n)),
        "avg_prediction_time_ms": _round(_ratio(float(sums["sum_latency_ms"] or 0.0), n)),
        "mae": None,
        "rmse": None,
        "r2": None,
        "accuracy_rate": None,
    }
    if labeled:
        out["accuracy_rate"] = _round(int(sums["accurate"] or 0) / labeled)
    if labeled and rules.numeric_errors:
        ss_res = float(sums["ss_res"] or 0.0)
        # SS_tot = Σa² - (Σa)²/n: one pass, no sub-query for the mean. Written as mean x Σa,
        # which is at most Σa² (Cauchy-Schwarz): no overflow where (Σa)² would.
        sum_a = float(sums["sum_a"] or 0.0)
        ss_tot = float(sums["sum_a2"] or 0.0) - (sum_a / labeled) * sum_a
        out["mae"] = _round(float(sums["sum_abs"] or 0.0) / labeled)
        out["rmse"] = _round(math.sqrt(ss_res / labeled))
        # A constant actual has no variance to explain: R² is undefined, not 1 or -inf.
        out["r2"] = _round(1.0 - ss_res / ss_tot) if ss_tot > 1e-12 * max(labeled, 1) else None
    out.update({k: _round(v) for k, v in rules.figures(sums, labeled).items()})
    return out


def _lift(sums: Mapping[str, Any], rules: TaskRules) -> Lift:
    n = int(sums["lift_n"] or 0)
    ml = float(sums["lift_ml"] or 0.0) / n if n else None
    fb = float(sums["lift_fb"] or 0.0) / n if n else None
    lift = rules.lift(ml, fb) if ml is not None and fb is not None else None
    return Lift(
        count=n, metric=rules.lift_metric, ml=_round(ml), fallback=_round(fb), lift=_round(lift)
    )


def _named(family: ModelFamily | str) -> tuple[str, TaskRules]:
    """A model's name and task rules. Give the family itself for a model declared in
    IA_CONTINU_MODELS_DIR: a bare name is looked up among the built-in declarations only."""
    if isinstance(family, str):
        family = get_family(family)
    return family.name, family.rules


def _window_metrics(
    sums: Mapping[str, Any], family: str, rules: TaskRules, hours: int
) -> WindowMetrics:
    return WindowMetrics(
        period_hours=hours, family=family, lift=_lift(sums, rules), **_figures(sums, rules)
    )


# --- the figures ------------------------------------------------------------------------------


def window_metrics(session: Session, family: ModelFamily | str, hours: int) -> WindowMetrics:
    """The figures over the last ``hours``."""
    since = utcnow() - timedelta(hours=hours)
    family, rules = _named(family)
    # One range of the (family, created_at) index gives the figures and the shadow lift.
    (row,) = _aggregates(
        session,
        lambda safe: select(*_quality_columns(rules, safe), *_lift_columns(rules, safe)).where(
            _window(family, since)
        ),
    )
    return _window_metrics(_Sums(row), family, rules, hours)


def figures_between(
    session: Session,
    family: ModelFamily | str,
    start: datetime,
    end: datetime,
    *,
    version: str | None = None,
) -> Figures:
    """The figures of the rows logged in ``[start, end)``; with ``version``, only the rows
    that version answered (the sustained-degradation rule judges the champion, not the
    fallback nor a version it replaced)."""
    family, rules = _named(family)
    cond = and_(_window(family, start), P.created_at < end)
    if version is not None:
        cond = and_(cond, P.model_version == version)
    (row,) = _aggregates(session, lambda safe: select(*_quality_columns(rules, safe)).where(cond))
    return Figures(**_figures(_Sums(row), rules))


def daily_metrics(session: Session, family: ModelFamily | str, days: int) -> list[DayFigures]:
    """One entry per UTC day, oldest first; days without traffic are present with count 0."""
    first = utcnow().date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time())
    # date() exists on both backends (a string on SQLite, a date on PostgreSQL).
    day = func.date(P.created_at).label("day")
    family, rules = _named(family)
    rows = _aggregates(
        session,
        lambda safe: (
            select(day, *_quality_columns(rules, safe)).where(_window(family, since)).group_by(day)
        ),
    )
    by_day = {_as_date(r.day): _figures(_Sums(r), rules) for r in rows}
    empty = _figures(_Sums(), rules)
    return [
        DayFigures(date=d.isoformat(), **by_day.get(d, empty))
        for d in (first + timedelta(days=i) for i in range(days))
    ]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


_RECORD = (
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


def recent_predictions(session: Session, family: str, limit: int) -> list[PredictionRecord]:
    """The latest ``limit`` predictions, newest first."""
    rows = session.execute(
        select(*_RECORD)
        .where(P.family == family)
        .order_by(P.created_at.desc(), P.id.desc())
        .limit(limit)
    ).all()
    return [PredictionRecord.model_validate(r) for r in rows]


def anomalies(
    session: Session, family: str, threshold: float, hours: int = 24, *, limit: int = 100
) -> Anomalies:
    """Predictions whose error exceeds ``threshold`` in the last ``hours``, worst first.

    ``count`` is every such row; ``anomalies`` lists at most ``limit`` of them.
    """
    since = utcnow() - timedelta(hours=hours)
    cond = and_(_window(family, since), P.error > threshold)
    count = session.scalar(select(func.count()).where(cond)) or 0
    rows = session.execute(
        select(*_RECORD).where(cond).order_by(P.error.desc(), P.id.desc()).limit(limit)
    ).all()
    return Anomalies(
        threshold=threshold,
        period_hours=hours,
        count=int(count),
        anomalies=[PredictionRecord.model_validate(r) for r in rows],
    )


def prediction_count(session: Session, family: str) -> int:
    """Every prediction ever logged for ``family`` (counted on the (family, created_at) index)."""
    return int(session.scalar(select(func.count()).where(P.family == family)) or 0)


def _rollout(session: Session, settings: Settings) -> RolloutFigures:
    state = read_state(session, settings)
    stats = rollout_stats(session, settings.family, state.stats_since)
    return RolloutFigures(
        # The flag,
        ml_enabled=state.enabled,
        ml_traffic_percentage=state.percentage,
        fallback_on_error=state.fallback_on_error,
        shadow_rate=state.shadow_rate,
        # and how ML answered since its stats were reset.
        health=verdict(stats, state, settings).status,
        ml_requests=stats.ml_requests,
        ml_success_rate=stats.ml_success_rate,
    )


def summary(session: Session, settings: Settings) -> Summary:
    """Totals, the 24 h and 7 d figures, the rollout, the anomaly count.

    Each row is read once: the last 24 h and the 6 days before are two ranges of the
    (family, created_at) index, each with plain sums (the 7 d figures add both up), the 24 h
    range also counts the anomalies; the total adds the rows older than 7 days, counted on the
    index alone. A CASE per window per aggregate over the whole week would cost more than
    the second range.
    """
    family = settings.family
    now = utcnow()
    rules = get_family(family, settings).rules
    since_24h, since_7d = now - timedelta(hours=24), now - timedelta(hours=168)
    threshold = settings.anomaly_threshold

    def columns(safe: bool) -> list[ColumnElement[Any]]:
        return [*_quality_columns(rules, safe), *_lift_columns(rules, safe)]

    anomaly_count = func.count(when(P.error > threshold)).label("anomalies")
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
    day, week = _Sums(last_24h), _Sums(last_24h, days_2_to_7)
    return Summary(
        family=family,
        total_predictions=int(older or 0) + int(week["count"] or 0),
        metrics_24h=_window_metrics(day, family, rules, 24),
        metrics_7d=_window_metrics(week, family, rules, 168),
        feature_flags=_rollout(session, settings),
        anomaly_threshold=threshold,
        anomalies_count=int(day["anomalies"] or 0),
        timestamp=now.isoformat() + "Z",
        targets={
            limit.figure: float(getattr(settings, limit.setting))
            for limit in (*COMMON_LIMITS, *rules.performance_limits)
        },
    )
