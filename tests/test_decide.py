"""ia_continu.decide, case by case (plain functions, no Prefect)."""

from __future__ import annotations

import pytest

from ia_continu.config import Settings
from ia_continu.decide import crossed, decide_retrain, performance_checks
from ia_continu.families import get_family
from ia_continu.families.tasks import COMMON_LIMITS, ClassificationRules, RegressionRules
from ia_continu.vocab import Task
from ia_continu.watch.quality import Figures

S = Settings(
    environment="test",
    r2_threshold=0.65,
    rmse_threshold=4.0,
    accuracy_threshold=0.8,
    mae_threshold=3.0,
    latency_threshold_ms=150.0,
)
REGRESSION, CLASSIFICATION = RegressionRules(), ClassificationRules()


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
def test_regression_retrains_on_drift_and_poor_r2_or_rmse(drift, r2, rmse, retrain, reason_part):
    d = decide_retrain(drift=drift, metrics=Figures(r2=r2, rmse=rmse), settings=S, rules=REGRESSION)
    assert d.retrain is retrain
    assert reason_part in d.reason


def test_the_decision_records_the_figures_and_limits_it_used():
    d = decide_retrain(drift=True, metrics=Figures(r2=0.5, rmse=3.0), settings=S, rules=REGRESSION)
    assert d.checks == {
        "r2": 0.5,
        "r2_threshold": 0.65,
        "rmse": 3.0,
        "rmse_threshold": 4.0,
        "drift": True,
    }


@pytest.mark.parametrize(
    ("drift", "accuracy", "retrain"),
    [(True, 0.70, True), (True, 0.90, False), (False, 0.70, False), (True, None, False)],
)
def test_classification_uses_accuracy(drift, accuracy, retrain):
    d = decide_retrain(
        drift=drift,
        metrics=Figures(accuracy_rate=accuracy, r2=0.0),
        settings=S,
        rules=CLASSIFICATION,
    )
    assert d.retrain is retrain
    if retrain:
        assert "accuracy 0.700 < 0.8" in d.reason


def test_force_overrides_everything():
    d = decide_retrain(drift=False, metrics=Figures(), settings=S, rules=REGRESSION, force=True)
    assert d.retrain and d.forced and "forced" in d.reason


def test_performance_thresholds():
    good = Figures(mae=2.0, r2=0.8, rmse=3.0, accuracy_rate=0.9, avg_prediction_time_ms=5.0)
    assert crossed(performance_checks(good, S, rules=REGRESSION)) == []
    bad = Figures(mae=3.5, r2=0.5, rmse=3.0, accuracy_rate=0.7, avg_prediction_time_ms=200.0)
    names = {c.metric for c in crossed(performance_checks(bad, S, rules=REGRESSION))}
    assert names == {"mae", "r2", "accuracy_rate", "avg_prediction_time_ms"}


def test_missing_metrics_are_not_crossings():
    checks = performance_checks(Figures(), S, rules=REGRESSION)
    assert crossed(checks) == []
    assert checks[0].describe() == "accuracy_rate: no data"
    assert crossed(performance_checks(Figures(), S, rules=CLASSIFICATION)) == []


def test_classification_checks_accuracy_and_f1_when_known():
    m = Figures(accuracy_rate=0.75, f1=0.6, avg_prediction_time_ms=1.0, r2=-5.0)
    names = {c.metric for c in crossed(performance_checks(m, S, rules=CLASSIFICATION))}
    assert names == {"accuracy_rate", "f1"}
    unknown_f1 = performance_checks(Figures(accuracy_rate=0.9), S, rules=CLASSIFICATION)
    assert [c.metric for c in unknown_f1] == ["accuracy_rate", "avg_prediction_time_ms"]


def test_every_limit_names_a_figure_and_a_setting():
    for rules in (REGRESSION, CLASSIFICATION):
        for limit in (*COMMON_LIMITS, *rules.performance_limits, *rules.retrain_limits):
            assert limit.figure in Figures.model_fields, limit
            assert limit.setting in Settings.model_fields, limit


@pytest.mark.parametrize(
    ("family", "task"), [("classification", Task.classification), ("delay", Task.regression)]
)
def test_each_family_hands_out_its_tasks_rules(family, task):
    rules = get_family(family).rules
    assert rules.task is task
