"""Pure decisions of the loop: "retrain?" and "is the model within its thresholds?".

No I/O here, so every branch is a plain unit test (tests/test_decide.py).

The retrain rule: retrain when the inputs drifted AND the model got worse (for a regression,
``r2 < r2_threshold or rmse > rmse_threshold``; for a classifier, accuracy below
``accuracy_threshold``). Drift alone is not enough (a shift the model extrapolates well costs
a retrain for nothing) and bad figures alone are not enough (noise in a small window). Which
figures judge the model, against which setting, is the task's (``ModelFamily.rules``).
"""

from __future__ import annotations

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


def decide_retrain(
    *,
    drift: bool,
    metrics: Figures,
    settings: Settings,
    rules: TaskRules,
    force: bool = False,
) -> RetrainDecision:
    """Retrain iff drift AND one of the task's retrain limits is crossed (strictly: a figure
    equal to its limit is not worse than it).

    ``metrics`` are the recent window's (``quality.window_metrics``). Without actuals the
    model cannot be judged degraded, so drift alone does not retrain: ``force`` exists for the
    operator who knows better.
    """
    checks: dict[str, Any] = {}
    reasons = []
    for limit in rules.retrain_limits:
        value = getattr(metrics, limit.figure)
        bound = getattr(settings, limit.setting)
        checks[limit.figure], checks[limit.setting] = value, bound
        worse = "<" if limit.direction == ">" else ">"
        if value is not None and (value < bound if worse == "<" else value > bound):
            reasons.append(f"{limit.name} {value:.3f} {worse} {bound}")
    degraded = bool(reasons)
    checks["drift"] = drift

    if force:
        return RetrainDecision(True, "forced by the operator", drift, degraded, True, checks)
    if drift and degraded:
        return RetrainDecision(
            True, "drift and " + " and ".join(reasons), drift, degraded, checks=checks
        )
    if drift:
        known = any(getattr(metrics, limit.figure) is not None for limit in rules.retrain_limits)
        why = "model still good" if known else "no actuals to judge it"
        return RetrainDecision(False, f"drift but {why}", drift, degraded, checks=checks)
    if degraded:
        return RetrainDecision(
            False,
            "degraded without drift (" + " and ".join(reasons) + "): alert only",
            drift,
            degraded,
            checks=checks,
        )
    return RetrainDecision(False, "no drift and model good", drift, degraded, checks=checks)
