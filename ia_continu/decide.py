"""Pure decisions of the loop: "retrain?" and "is the model within its thresholds?".

No I/O here, so every branch is a plain unit test (tests/test_decide.py).

The retrain rule has two paths:

- input drift AND the model got worse (for a regression, ``r2 < r2_threshold or rmse >
  rmse_threshold``; for a classifier, accuracy below ``accuracy_threshold``);
- concept drift: the inputs look the same but the champion crossed its retrain limit in each
  of the last ``degradation_windows`` windows of ``degradation_window_hours`` (realised
  figures when a window has ``degradation_min_labelled`` outcomes, else estimated ones).

Drift alone is not enough (a shift the model extrapolates well costs a retrain for nothing)
and one bad window is not enough (noise, or a burst of odd requests): it alerts only. Which
figures judge the model, against which setting, is the task's (``ModelFamily.rules``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ia_continu.config import Settings
from ia_continu.families.tasks import COMMON_LIMITS, Limit, TaskRules

if TYPE_CHECKING:
    from ia_continu.watch.quality import Figures


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    retrain: bool
    reason: str
    drift: bool
    degraded: bool
    forced: bool = False
    checks: dict[str, Any] = field(default_factory=dict)
    sustained: bool = False  # the concept-drift path: bad in every recent window


@dataclass(frozen=True, slots=True)
class ThresholdCheck:
    """A figure compared with its limit; ``crossed`` when the model is out of bounds."""

    metric: str
    value: float | None
    limit: float
    direction: Literal["<", ">"]  # "<" means value must stay below limit, ">" above
    crossed: bool

    def describe(self) -> str:
        if self.value is None:
            return f"{self.metric}: no data"
        bad = ">=" if self.direction == "<" else "<="
        ok = self.direction
        return f"{self.metric} {self.value:.4g} {bad if self.crossed else ok} {self.limit:g}"


def _check(limit: Limit, metrics: Figures, settings: Settings) -> ThresholdCheck:
    value = getattr(metrics, limit.figure)
    bound = float(getattr(settings, limit.setting))
    # A missing figure (no actuals yet) is "unknown", never a crossing: alerting on absent data
    # would page someone every hour until the first outcomes arrive.
    if value is None:
        crossed = False
    elif limit.direction == "<":
        crossed = not value < bound
    else:
        crossed = not value > bound
    return ThresholdCheck(
        limit.figure, None if value is None else float(value), bound, limit.direction, crossed
    )


def performance_checks(
    metrics: Figures, settings: Settings, *, rules: TaskRules
) -> list[ThresholdCheck]:
    """Every task: accuracy rate above ``accuracy_threshold``, average prediction time below
    ``latency_threshold_ms``; then the task's own (a regression: MAE below ``mae_threshold``,
    R² above ``r2_threshold``, RMSE below ``rmse_threshold``; a classifier: F1, when known,
    above ``accuracy_threshold``). A limit itself counts as crossed."""
    return [
        _check(limit, metrics, settings)
        for limit in (*COMMON_LIMITS, *rules.performance_limits)
        if not (limit.only_when_known and getattr(metrics, limit.figure) is None)
    ]


def crossed(checks: list[ThresholdCheck]) -> list[ThresholdCheck]:
    return [c for c in checks if c.crossed]


def _worse(limit: Limit, metrics: Figures, settings: Settings) -> str | None:
    """How ``metrics`` cross ``limit`` ("accuracy 0.612 < 0.8"), or None (not crossed, or
    unknown). A figure equal to its limit is not worse than it."""
    value = getattr(metrics, limit.figure)
    bound = getattr(settings, limit.setting)
    if value is None:
        return None
    if limit.direction == ">":
        return f"{limit.name} {value:.3f} < {bound}" if value < bound else None
    return f"{limit.name} {value:.3f} > {bound}" if value > bound else None


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """One window of the sustained-degradation rule: the champion's realised figures over
    it and, when an estimator gave them, its estimated figures (outcomes still pending)."""

    start: str  # ISO 8601, for the audit
    realised: Figures
    estimated: Figures | None = None


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    """How one window was judged: by which figures, and what crossed (empty: not bad)."""

    start: str
    source: Literal["realised", "estimated", "unknown"]
    labelled: int
    crossed: list[str]

    @property
    def bad(self) -> bool:
        return bool(self.crossed)


def judge_window(window: WindowFigures, settings: Settings, rules: TaskRules) -> WindowVerdict:
    """Realised figures when the window has ``degradation_min_labelled`` outcomes; else the
    estimated ones; else unknown, which is never bad (absent data must not retrain)."""
    labelled = window.realised.labeled_count
    source: Literal["realised", "estimated", "unknown"]
    if labelled >= settings.degradation_min_labelled:
        figures, source = window.realised, "realised"
    elif window.estimated is not None:
        figures, source = window.estimated, "estimated"
    else:
        return WindowVerdict(window.start, "unknown", labelled, [])
    limits = rules.retrain_limits
    if source == "estimated":
        # An estimator gives one figure (CBPE: accuracy, DLE: MAE), not always a retrain
        # limit's (a regressor's R² and RMSE): the estimate is judged against its own limit.
        limits = tuple(
            limit
            for limit in (*rules.retrain_limits, *rules.performance_limits)
            if getattr(figures, limit.figure) is not None
        )
    reasons = [r for limit in limits if (r := _worse(limit, figures, settings))]
    return WindowVerdict(window.start, source, labelled, reasons)


def sustained_degradation(
    windows: Sequence[WindowFigures], settings: Settings, rules: TaskRules
) -> tuple[bool, list[WindowVerdict]]:
    """Is the retrain limit crossed in each of the last ``degradation_windows`` windows
    (``windows`` oldest first)? Also returns each of those windows' verdict."""
    k = settings.degradation_windows
    verdicts = [judge_window(w, settings, rules) for w in windows[-k:]]
    return len(verdicts) == k and all(v.bad for v in verdicts), verdicts


def _sustained_reason(verdicts: list[WindowVerdict], drift: bool) -> str:
    what = "; ".join(
        " and ".join(v.crossed) + (" (estimated)" if v.source == "estimated" else "")
        for v in verdicts
    )
    context = "with input drift" if drift else "without input drift"
    return f"sustained degradation over {len(verdicts)} windows {context}: {what}"


def decide_retrain(
    *,
    drift: bool,
    metrics: Figures,
    settings: Settings,
    rules: TaskRules,
    force: bool = False,
    windows: Sequence[WindowFigures] = (),
) -> RetrainDecision:
    """Retrain iff drift AND one of the task's retrain limits is crossed (strictly: a figure
    equal to its limit is not worse than it), or iff the limit is crossed in each of the
    last ``degradation_windows`` ``windows`` (oldest first), with or without drift.

    ``metrics`` are the recent window's (``quality.window_metrics``). Without actuals the
    model cannot be judged degraded, so drift alone does not retrain: ``force`` exists for the
    operator who knows better.
    """
    checks: dict[str, Any] = {}
    reasons = []
    for limit in rules.retrain_limits:
        checks[limit.figure] = getattr(metrics, limit.figure)
        checks[limit.setting] = getattr(settings, limit.setting)
        if reason := _worse(limit, metrics, settings):
            reasons.append(reason)
    degraded = bool(reasons)
    checks["drift"] = drift
    sustained, verdicts = sustained_degradation(windows, settings, rules)
    if windows:
        checks["sustained"] = sustained
        checks["windows"] = [
            {"start": v.start, "source": v.source, "labelled": v.labelled, "crossed": v.crossed}
            for v in verdicts
        ]

    def decision(retrain: bool, why: str, **kw: Any) -> RetrainDecision:
        return RetrainDecision(
            retrain, why, drift, degraded or sustained, checks=checks, sustained=sustained, **kw
        )

    if force:
        return decision(True, "forced by the operator", forced=True)
    if drift and degraded:
        return decision(True, "drift and " + " and ".join(reasons))
    if sustained:
        return decision(True, _sustained_reason(verdicts, drift))
    if drift:
        known = any(getattr(metrics, limit.figure) is not None for limit in rules.retrain_limits)
        why = "model still good" if known else "no actuals to judge it"
        return decision(False, f"drift but {why}")
    if degraded:
        bad = sum(v.bad for v in verdicts)
        streak = (
            f", {bad} of the last {settings.degradation_windows} windows bad" if windows else ""
        )
        return decision(
            False, "degraded without drift (" + " and ".join(reasons) + f"{streak}): alert only"
        )
    return decision(False, "no drift and model good")
