"""ia_continu.decide, case by case (plain functions, no Prefect)."""

from __future__ import annotations

from pathlib import Path

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


# --- concept drift: sustained degradation over K windows, without input drift ---------------

K3 = S.model_copy(update={"degradation_windows": 3, "degradation_min_labelled": 50})


def _windows(*accuracies, labelled=100, estimated=None):
    from ia_continu.decide import WindowFigures

    return [
        WindowFigures(
            start=f"2026-11-2{i}T00:00:00",
            realised=Figures(accuracy_rate=a, labeled_count=labelled if a is not None else 0),
            estimated=None if estimated is None else Figures(accuracy_rate=estimated[i]),
        )
        for i, a in enumerate(accuracies)
    ]


def _decide(windows, drift=False, accuracy=0.7):
    return decide_retrain(
        drift=drift,
        metrics=Figures(accuracy_rate=accuracy),
        settings=K3,
        rules=CLASSIFICATION,
        windows=windows,
    )


def test_k_bad_windows_without_drift_retrain():
    d = _decide(_windows(0.61, 0.59, 0.65))
    assert d.retrain and d.sustained and d.degraded and not d.drift
    assert d.reason == (
        "sustained degradation over 3 windows without input drift: accuracy 0.610 < 0.8; "
        "accuracy 0.590 < 0.8; accuracy 0.650 < 0.8"
    )
    assert d.checks["sustained"] is True
    assert [w["source"] for w in d.checks["windows"]] == ["realised"] * 3


@pytest.mark.parametrize(
    "accuracies",
    [
        (0.61, 0.85, 0.65),  # one good window breaks the streak
        (0.85, 0.61, 0.65),  # bad only lately: not yet K windows
        (0.61, 0.59, 0.80),  # the limit itself is not a crossing
        (0.61, 0.59),  # fewer windows than K
    ],
)
def test_fewer_than_k_bad_windows_only_alert(accuracies):
    d = _decide(_windows(*accuracies))
    assert not d.retrain and not d.sustained
    assert d.reason.startswith("degraded without drift (accuracy 0.700 < 0.8, ")
    assert d.reason.endswith("windows bad): alert only")


def test_a_window_with_too_few_outcomes_is_unknown_never_bad():
    d = _decide(_windows(0.61, 0.59, 0.30, labelled=49))
    assert not d.retrain
    assert [w["source"] for w in d.checks["windows"]] == ["unknown"] * 3
    assert all(w["crossed"] == [] for w in d.checks["windows"])


def test_estimated_figures_judge_a_window_waiting_for_outcomes():
    # The newest window has 10 outcomes: its estimate (outcomes pending) judges it.
    windows = _windows(0.61, 0.59, 0.95, estimated=(0.9, 0.9, 0.62))
    windows[2] = windows[2].__class__(
        windows[2].start, Figures(accuracy_rate=0.95, labeled_count=10), windows[2].estimated
    )
    d = _decide(windows)
    assert d.retrain and d.sustained
    assert d.reason.endswith("accuracy 0.620 < 0.8 (estimated)")
    assert [w["source"] for w in d.checks["windows"]] == ["realised", "realised", "estimated"]
    # A good estimate breaks the streak as a good realised window would.
    windows[2] = windows[2].__class__(
        windows[2].start, windows[2].realised, Figures(accuracy_rate=0.9)
    )
    assert not _decide(windows).retrain


def test_drift_and_poor_metrics_stays_its_own_path():
    d = _decide(_windows(0.9, 0.9, 0.9), drift=True, accuracy=0.7)
    assert d.retrain and not d.sustained and d.reason == "drift and accuracy 0.700 < 0.8"
    # Drift with every window bad but the 24 h figure fine: still a retrain, said as such.
    d = _decide(_windows(0.7, 0.7, 0.7), drift=True, accuracy=0.85)
    assert d.retrain and d.reason.startswith("sustained degradation over 3 windows with input")


def test_regression_windows_judge_r2_and_rmse():
    from ia_continu.decide import WindowFigures

    bad = Figures(r2=0.5, rmse=3.0, labeled_count=80)
    windows = [WindowFigures(f"w{i}", bad) for i in range(3)]
    d = decide_retrain(drift=False, metrics=bad, settings=K3, rules=REGRESSION, windows=windows)
    assert d.retrain and "R² 0.500 < 0.65; R² 0.500 < 0.65; R² 0.500 < 0.65" in d.reason


def test_k_is_a_setting():
    d = decide_retrain(
        drift=False,
        metrics=Figures(accuracy_rate=0.7),
        settings=K3.model_copy(update={"degradation_windows": 2}),
        rules=CLASSIFICATION,
        windows=_windows(0.9, 0.61, 0.59),  # only the last K count
    )
    assert d.retrain and "over 2 windows" in d.reason


def test_a_declaration_sets_its_own_k_and_window_length(tmp_path):
    from ia_continu.catalog import model_settings, reload_catalog

    iris = (Path(__file__).parents[1] / "ia_continu/declared/builtin/iris.toml").read_text()
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "flowers.toml").write_text(
        iris.replace('name = "iris"', 'name = "flowers"').replace(
            "min_accuracy = 0.9",
            "min_accuracy = 0.9\ndegradation_windows = 4\ndegradation_window_hours = 1.5",
        )
    )
    reload_catalog()
    try:
        base = Settings(environment="test", models_dir=folder)
        view = model_settings(base, "flowers")
        assert (view.degradation_windows, view.degradation_window_hours) == (4, 1.5)
        # A declaration without them keeps the service's.
        iris_view = model_settings(base, "iris")
        assert (iris_view.degradation_windows, iris_view.degradation_window_hours) == (3, 8.0)
    finally:
        reload_catalog()


def test_a_regressor_s_estimated_window_is_judged_on_its_estimated_mae():
    # DLE estimates the MAE, not R² nor RMSE: the estimate meets the MAE limit instead.
    from ia_continu.decide import WindowFigures

    pending = Figures(labeled_count=3)
    windows = [WindowFigures(f"w{i}", pending, Figures(mae=3.4)) for i in range(3)]
    d = decide_retrain(
        drift=False, metrics=Figures(), settings=K3, rules=REGRESSION, windows=windows
    )
    assert d.retrain and d.reason.endswith("mae 3.400 > 3.0 (estimated)")
    fine = [WindowFigures(f"w{i}", pending, Figures(mae=2.0)) for i in range(3)]
    assert not decide_retrain(
        drift=False, metrics=Figures(), settings=K3, rules=REGRESSION, windows=fine
    ).retrain
