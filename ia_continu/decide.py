"""Pure decisions of the loop: seed 002's "retrain?" and seed 001's performance thresholds.

No I/O here, so every branch is a plain unit test (tests/flows/test_decision.py).

Seed 002 retrains when the inputs drifted AND the model got worse: ``drift and (r2 < 0.65 or
rmse > RMSE_THRESHOLD)``. Drift alone is not enough (a shift the model extrapolates well costs
a retrain for nothing) and bad metrics alone are not enough (noise in a small window). For the
classification family there is no R² or RMSE: accuracy below ``accuracy_threshold`` plays
their part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ia_continu.config import Settings


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    retrain: bool
    reason: str
    drift: bool
    degraded: bool
    forced: bool = False
    checks: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ThresholdCheck:
    """A metric compared with its limit; ``crossed`` when the model is out of bounds."""

    metric: str
    value: float | None
    limit: float
    direction: str  # "<" means value must stay below limit, ">" above
    crossed: bool

    def describe(self) -> str:
        if self.value is None:
            return f"{self.metric}: no data"
        bad = ">=" if self.direction == "<" else "<="
        ok = self.direction
        return f"{self.metric} {self.value:.4g} {bad if self.crossed else ok} {self.limit:g}"


def _check(metric: str, value: float | None, limit: float, direction: str) -> ThresholdCheck:
    # A missing metric (no actuals yet) is "unknown", never a crossing: alerting on absent data
    # would page someone every hour until the first outcomes arrive.
    if value is None:
        crossed = False
    elif direction == "<":
        crossed = not value < limit
    else:
        crossed = not value > limit
    return ThresholdCheck(
        metric, None if value is None else float(value), limit, direction, crossed
    )


def performance_checks(
    metrics: Mapping[str, Any], settings: Settings, *, task: str
) -> list[ThresholdCheck]:
    """Seed 001: MAE < 3, R² > 0.65, accuracy > 80 %, prediction time < 150 ms.

    Classification has no MAE/R²: its equivalents are accuracy and (when known) F1, both
    against ``accuracy_threshold``.
    """
    checks = [
        _check("accuracy_rate", metrics.get("accuracy_rate"), settings.accuracy_threshold, ">"),
        _check(
            "avg_prediction_time_ms",
            metrics.get("avg_prediction_time_ms"),
            settings.latency_threshold_ms,
            "<",
        ),
    ]
    if task == "regression":
        checks += [
            _check("mae", metrics.get("mae"), settings.mae_threshold, "<"),
            _check("r2", metrics.get("r2"), settings.r2_threshold, ">"),
            _check("rmse", metrics.get("rmse"), settings.rmse_threshold, "<"),
        ]
    elif metrics.get("f1") is not None:
        checks.append(_check("f1", metrics.get("f1"), settings.accuracy_threshold, ">"))
    return checks


def crossed(checks: list[ThresholdCheck]) -> list[ThresholdCheck]:
    return [c for c in checks if c.crossed]


def decide_retrain(
    *,
    drift: bool,
    metrics: Mapping[str, Any],
    settings: Settings,
    task: str,
    force: bool = False,
) -> RetrainDecision:
    """Seed 002 section 3.5: retrain iff drift AND (R² < r2_threshold OR RMSE > rmse_threshold).

    ``metrics`` are the recent window's (monitoring.window_metrics keys). Without actuals the
    model cannot be judged degraded, so drift alone does not retrain: ``force`` exists for the
    operator who knows better.
    """
    if task == "regression":
        r2, rmse = metrics.get("r2"), metrics.get("rmse")
        checks = {
            "r2": r2,
            "r2_threshold": settings.r2_threshold,
            "rmse": rmse,
            "rmse_threshold": settings.rmse_threshold,
        }
        reasons = []
        if r2 is not None and r2 < settings.r2_threshold:
            reasons.append(f"R² {r2:.3f} < {settings.r2_threshold}")
        if rmse is not None and rmse > settings.rmse_threshold:
            reasons.append(f"RMSE {rmse:.3f} > {settings.rmse_threshold}")
    else:
        acc = metrics.get("accuracy_rate")
        checks = {"accuracy_rate": acc, "accuracy_threshold": settings.accuracy_threshold}
        reasons = []
        if acc is not None and acc < settings.accuracy_threshold:
            reasons.append(f"accuracy {acc:.3f} < {settings.accuracy_threshold}")
    degraded = bool(reasons)
    checks["drift"] = drift

    if force:
        return RetrainDecision(True, "forced by the operator", drift, degraded, True, checks)
    if drift and degraded:
        return RetrainDecision(
            True, "drift and " + " and ".join(reasons), drift, degraded, checks=checks
        )
    if drift:
        why = "no actuals to judge it" if not _has_quality(metrics, task) else "model still good"
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


def _has_quality(metrics: Mapping[str, Any], task: str) -> bool:
    keys = ("r2", "rmse") if task == "regression" else ("accuracy_rate",)
    return any(metrics.get(k) is not None for k in keys)
