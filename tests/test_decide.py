"""ia_continu.decide, case by case (plain functions, no Prefect)."""

from __future__ import annotations

import pytest

from ia_continu.config import Settings
from ia_continu.decide import crossed, decide_retrain, performance_checks

S = Settings(
    environment="test",
    r2_threshold=0.65,
    rmse_threshold=4.0,
    accuracy_threshold=0.8,
    mae_threshold=3.0,
    latency_threshold_ms=150.0,
)


@pytest.mark.parametrize(
    ("drift", "r2", "rmse", "retrain", "reason_part"),
    [
        (True, 0.50, 3.0, True, "R² 0.500 < 0.65"),
        (True, 0.80, 5.0, True, "RMSE 5.000 > 4.0"),
        (True, 0.50, 5.0, True, "and RMSE"),
        (True, 0.80, 3.0, False, "model still good"),
        (False, 0.50, 5.0, False, "degraded without drift"),
        (False, 0.80, 3.0, False, "no drift and model good"),
        (True, None, None, False, "no actuals"),
        (True, 0.65, 4.0, False, "model still good"),  # limits themselves are not crossings
    ],
)
def test_seed_002_regression_rule(drift, r2, rmse, retrain, reason_part):
    d = decide_retrain(drift=drift, metrics={"r2": r2, "rmse": rmse}, settings=S, task="regression")
    assert d.retrain is retrain
    assert reason_part in d.reason


@pytest.mark.parametrize(
    ("drift", "accuracy", "retrain"),
    [(True, 0.70, True), (True, 0.90, False), (False, 0.70, False), (True, None, False)],
)
def test_classification_uses_accuracy(drift, accuracy, retrain):
    d = decide_retrain(
        drift=drift,
        metrics={"accuracy_rate": accuracy, "r2": 0.0},
        settings=S,
        task="classification",
    )
    assert d.retrain is retrain


def test_force_overrides_everything():
    d = decide_retrain(drift=False, metrics={}, settings=S, task="regression", force=True)
    assert d.retrain and d.forced and "forced" in d.reason


def test_performance_thresholds_seed_001():
    good = {"mae": 2.0, "r2": 0.8, "rmse": 3.0, "accuracy_rate": 0.9, "avg_prediction_time_ms": 5.0}
    assert crossed(performance_checks(good, S, task="regression")) == []
    bad = {
        "mae": 3.5,
        "r2": 0.5,
        "rmse": 3.0,
        "accuracy_rate": 0.7,
        "avg_prediction_time_ms": 200.0,
    }
    names = {c.metric for c in crossed(performance_checks(bad, S, task="regression"))}
    assert names == {"mae", "r2", "accuracy_rate", "avg_prediction_time_ms"}


def test_missing_metrics_are_not_crossings():
    empty = {"mae": None, "r2": None, "accuracy_rate": None, "avg_prediction_time_ms": None}
    assert crossed(performance_checks(empty, S, task="regression")) == []
    assert crossed(performance_checks(empty, S, task="classification")) == []


def test_classification_checks_accuracy_and_f1():
    m = {"accuracy_rate": 0.75, "f1": 0.6, "avg_prediction_time_ms": 1.0, "r2": -5.0}
    names = {c.metric for c in crossed(performance_checks(m, S, task="classification"))}
    assert names == {"accuracy_rate", "f1"}
