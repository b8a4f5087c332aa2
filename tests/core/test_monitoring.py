"""Monitoring figures computed in SQL equal scikit-learn's on the same rows, on both backends."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
)

from ia_continu import monitoring
from ia_continu.actuals import record_actuals
from ia_continu.db import session_scope
from ia_continu.models import utcnow
from tests.factories import actuals_for, insert_rows, prediction_rows

APPROX = {"rel": 1e-6, "abs": 1e-6}  # the API rounds to 6 decimals


def _seed(engine, settings, family, n=400, labeled=300, seed=0, shadow=False):
    rng = np.random.default_rng(seed)
    rows = prediction_rows(family, n, rng=rng, shadow=shadow)
    insert_rows(engine, rows)
    actual = actuals_for(family, rows[:labeled], rng)
    with session_scope(engine) as s:
        record_actuals(
            s,
            settings,
            [
                {"request_id": r["request_id"], "actual": a}
                for r, a in zip(rows[: len(actual)], actual, strict=True)
            ],
        )
    return rows, np.array([r["prediction"] for r in rows[:labeled]]), np.array(actual)


def test_delay_metrics_equal_scikit_learn(settings_factory, engine):
    settings = settings_factory(family="delay")
    rows, y_pred, y_true = _seed(engine, settings, "delay")
    with session_scope(engine) as s:
        m = monitoring.window_metrics(s, "delay", 24)
    assert m["count"] == 400 and m["labeled_count"] == 300
    assert m["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred), **APPROX)
    assert m["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y_true, y_pred)), **APPROX)
    assert m["r2"] == pytest.approx(r2_score(y_true, y_pred), **APPROX)
    assert m["accuracy_rate"] == pytest.approx(np.mean(np.abs(y_true - y_pred) < 3.0), **APPROX)
    # Confidence and latency cover every answered prediction, labelled or not.
    assert m["avg_confidence"] == pytest.approx(np.mean([r["confidence"] for r in rows]), **APPROX)
    assert m["avg_prediction_time_ms"] == pytest.approx(
        np.mean([r["latency_ms"] for r in rows]), **APPROX
    )


def test_classification_metrics_equal_scikit_learn(settings, engine):
    _, y_pred, y_true = _seed(engine, settings, "classification", seed=1)
    with session_scope(engine) as s:
        m = monitoring.window_metrics(s, "classification", 24)
    assert m["accuracy_rate"] == pytest.approx(accuracy_score(y_true, y_pred), **APPROX)
    assert m["precision"] == pytest.approx(precision_score(y_true, y_pred), **APPROX)
    assert m["recall"] == pytest.approx(recall_score(y_true, y_pred), **APPROX)
    assert m["f1"] == pytest.approx(f1_score(y_true, y_pred), **APPROX)
    assert m["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred), **APPROX)


def test_shadow_lift_compares_ml_and_fallback_on_the_same_rows(settings_factory, engine):
    settings = settings_factory(family="delay")
    rows, _, y_true = _seed(engine, settings, "delay", n=200, labeled=150, seed=2, shadow=True)
    ml = np.array([r["ml_prediction"] for r in rows[:150]])
    fb = np.array([r["fallback_prediction"] for r in rows[:150]])
    with session_scope(engine) as s:
        lift = monitoring.window_metrics(s, "delay", 24)["lift"]
    assert lift["count"] == 150 and lift["metric"] == "mae"
    assert lift["ml"] == pytest.approx(mean_absolute_error(y_true, ml), **APPROX)
    assert lift["fallback"] == pytest.approx(mean_absolute_error(y_true, fb), **APPROX)
    expected = mean_absolute_error(y_true, fb) - mean_absolute_error(y_true, ml)
    assert lift["lift"] == pytest.approx(expected, **APPROX)


def test_window_excludes_older_rows_and_empty_window_has_no_metrics(settings, engine):
    rng = np.random.default_rng(3)
    old = prediction_rows(
        "classification", 5, rng=rng, prefix="old", created_at=utcnow() - timedelta(hours=30)
    )
    insert_rows(engine, old)
    with session_scope(engine) as s:
        day = monitoring.window_metrics(s, "classification", 24)
        week = monitoring.window_metrics(s, "classification", 168)
    assert day["count"] == 0 and day["mae"] is None and day["r2"] is None
    assert week["count"] == 5


def test_daily_buckets_by_utc_day_and_fills_quiet_days(settings, engine):
    rng = np.random.default_rng(4)
    now = utcnow()
    insert_rows(engine, prediction_rows("classification", 3, rng=rng, prefix="a", created_at=now))
    two_days_ago = now - timedelta(days=2)
    insert_rows(
        engine, prediction_rows("classification", 2, rng=rng, prefix="b", created_at=two_days_ago)
    )
    with session_scope(engine) as s:
        days = monitoring.daily_metrics(s, "classification", 7)
    assert len(days) == 7 and days[-1]["date"] == now.date().isoformat()
    by_date = {d["date"]: d["count"] for d in days}
    # Rows are spaced a second apart backwards from their instant: around midnight they
    # may straddle two days, so compare totals per the same rule SQL applies.
    assert sum(by_date.values()) == 5
    assert by_date[two_days_ago.date().isoformat()] >= 1


def test_anomalies_are_errors_above_the_threshold(settings_factory, engine):
    settings = settings_factory(family="delay")
    _, y_pred, y_true = _seed(engine, settings, "delay", seed=5)
    errors = np.abs(y_pred - y_true)
    with session_scope(engine) as s:
        found = monitoring.anomalies(s, "delay", 4.0, limit=10)
    assert found["count"] == int(np.sum(errors > 4.0))
    listed = [a["error"] for a in found["anomalies"]]
    assert listed == sorted(listed, reverse=True) and len(listed) == min(10, found["count"])


def test_summary_has_seed_001_shape(settings, engine):
    _seed(engine, settings, "classification", n=20, labeled=10, seed=6)
    with session_scope(engine) as s:
        out = monitoring.summary(s, settings)
        recent = monitoring.recent_predictions(s, "classification", 5)
    assert set(out) >= {
        "total_predictions",
        "metrics_24h",
        "metrics_7d",
        "feature_flags",
        "anomalies_count",
        "timestamp",
    }
    assert out["total_predictions"] == 20 and out["metrics_7d"]["period_hours"] == 168
    assert out["feature_flags"]["ml_enabled"] is True
    assert len(recent) == 5 and recent[0]["created_at"] >= recent[-1]["created_at"]
