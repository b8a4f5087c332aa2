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

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import utcnow
from ia_continu.truth.actuals import record_actuals
from ia_continu.watch import quality
from tests.factories import actuals_for, insert_rows, prediction_rows

APPROX = {"rel": 1e-6, "abs": 1e-6}  # the API rounds to 6 decimals
SPECIES = ("setosa", "versicolor", "virginica")  # iris's classes, stored as indices 0..2


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
        m = quality.window_metrics(s, "delay", 24).model_dump()
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
        m = quality.window_metrics(s, "classification", 24).model_dump()
    assert m["accuracy_rate"] == pytest.approx(accuracy_score(y_true, y_pred), **APPROX)
    assert m["precision"] == pytest.approx(precision_score(y_true, y_pred), **APPROX)
    assert m["recall"] == pytest.approx(recall_score(y_true, y_pred), **APPROX)
    assert m["f1"] == pytest.approx(f1_score(y_true, y_pred), **APPROX)
    # An error between two labels means nothing: no MAE, RMSE or R² for a classifier.
    assert m["mae"] is None and m["rmse"] is None and m["r2"] is None


@pytest.mark.parametrize("absent", [None, 2])
def test_multiclass_macro_figures_equal_scikit_learn(settings_factory, engine, absent):
    """iris (3 classes, stored as indices): macro precision, recall and F1 are scikit-learn's
    ``average="macro"``, also when one class is neither predicted nor actual in the window
    (scikit-learn then averages over the classes present, and so does the SQL)."""
    settings = settings_factory(family="iris")
    rng = np.random.default_rng(11)
    classes = [c for c in range(3) if c != absent]
    rows = prediction_rows("delay", 240, rng=rng)
    for r in rows:
        r["family"], r["features"] = "iris", [5.0, 3.0, 4.0, 1.0]
        r["prediction"] = float(rng.choice(classes))
    insert_rows(engine, rows)
    labeled = rows[:200]
    # Right 70 % of the time, otherwise another present class.
    actual = [
        r["prediction"] if rng.random() < 0.7 else float(rng.choice(classes)) for r in labeled
    ]
    with session_scope(engine) as s:
        record_actuals(
            s,
            settings,
            [
                {"request_id": r["request_id"], "actual": SPECIES[int(a)]}  # posted as labels
                for r, a in zip(labeled, actual, strict=True)
            ],
        )
    y_pred = np.array([r["prediction"] for r in labeled])
    y_true = np.array(actual)
    with session_scope(engine) as s:
        m = quality.window_metrics(s, "iris", 24).model_dump()
        (today,) = [d.model_dump() for d in quality.daily_metrics(s, "iris", 1)]
    assert m["labeled_count"] == 200
    assert m["accuracy_rate"] == pytest.approx(accuracy_score(y_true, y_pred), **APPROX)
    for name, score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        assert m[name] == pytest.approx(score(y_true, y_pred, average="macro"), **APPROX), name
        assert today[name] == m[name], name
    assert m["mae"] is None and m["rmse"] is None and m["r2"] is None
    assert today["mae"] is None and today["accuracy_rate"] == m["accuracy_rate"]


def test_shadow_lift_compares_ml_and_fallback_on_the_same_rows(settings_factory, engine):
    settings = settings_factory(family="delay")
    rows, _, y_true = _seed(engine, settings, "delay", n=200, labeled=150, seed=2, shadow=True)
    ml = np.array([r["ml_prediction"] for r in rows[:150]])
    fb = np.array([r["fallback_prediction"] for r in rows[:150]])
    with session_scope(engine) as s:
        lift = quality.window_metrics(s, "delay", 24).lift
    assert lift.count == 150 and lift.metric == "mae"
    assert lift.ml == pytest.approx(mean_absolute_error(y_true, ml), **APPROX)
    assert lift.fallback == pytest.approx(mean_absolute_error(y_true, fb), **APPROX)
    expected = mean_absolute_error(y_true, fb) - mean_absolute_error(y_true, ml)
    assert lift.lift == pytest.approx(expected, **APPROX)


def test_window_excludes_older_rows_and_empty_window_has_no_metrics(settings, engine):
    rng = np.random.default_rng(3)
    old = prediction_rows(
        "classification", 5, rng=rng, prefix="old", created_at=utcnow() - timedelta(hours=30)
    )
    insert_rows(engine, old)
    with session_scope(engine) as s:
        day = quality.window_metrics(s, "classification", 24)
        week = quality.window_metrics(s, "classification", 168)
    assert day.count == 0 and day.mae is None and day.r2 is None
    assert week.count == 5


def test_daily_buckets_by_utc_day_and_fills_quiet_days(settings, engine):
    rng = np.random.default_rng(4)
    now = utcnow()
    insert_rows(engine, prediction_rows("classification", 3, rng=rng, prefix="a", created_at=now))
    two_days_ago = now - timedelta(days=2)
    insert_rows(
        engine, prediction_rows("classification", 2, rng=rng, prefix="b", created_at=two_days_ago)
    )
    with session_scope(engine) as s:
        days = quality.daily_metrics(s, "classification", 7)
    assert len(days) == 7 and days[-1].date == now.date().isoformat()
    by_date = {d.date: d.count for d in days}
    # Rows are spaced a second apart backwards from their instant: around midnight they
    # may straddle two days, so compare totals per the same rule SQL applies.
    assert sum(by_date.values()) == 5
    assert by_date[two_days_ago.date().isoformat()] >= 1


def test_anomalies_are_errors_above_the_threshold(settings_factory, engine):
    settings = settings_factory(family="delay")
    _, y_pred, y_true = _seed(engine, settings, "delay", seed=5)
    errors = np.abs(y_pred - y_true)
    with session_scope(engine) as s:
        found = quality.anomalies(s, "delay", 4.0, limit=10)
    assert found.count == int(np.sum(errors > 4.0))
    listed = [a.error for a in found.anomalies]
    assert listed == sorted(listed, reverse=True) and len(listed) == min(10, found.count)


def test_summary_has_totals_windows_rollout_and_anomalies(settings, engine):
    _seed(engine, settings, "classification", n=20, labeled=10, seed=6)
    with session_scope(engine) as s:
        out = quality.summary(s, settings).model_dump()
        recent = [r.model_dump() for r in quality.recent_predictions(s, "classification", 5)]
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


def _flat(figures: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _same_figures(got: dict, expected: dict) -> None:
    got, expected = _flat(got), _flat(expected)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, **APPROX), key
        else:
            assert got[key] == value, key


@pytest.mark.parametrize("family", ["classification", "delay"])
def test_summary_windows_equal_window_metrics(settings_factory, engine, family):
    """summary() reads the last 24 h and the 6 days before as two ranges and adds them up,
    and counts the rows older than 7 days apart: the figures are window_metrics'."""
    settings = settings_factory(family=family)
    rng = np.random.default_rng(7)
    now = utcnow()
    groups = [
        prediction_rows(
            family, 60, rng=rng, prefix=f"age{hours}", created_at=now - ago, shadow=True
        )
        for hours, ago in ((0, timedelta(0)), (72, timedelta(hours=72)), (240, timedelta(days=10)))
    ]
    outcomes = []
    for rows in groups:
        insert_rows(engine, rows)
        labeled = rows[:40]
        outcomes += [
            {"request_id": r["request_id"], "actual": a}
            for r, a in zip(labeled, actuals_for(family, labeled, rng), strict=True)
        ]
    with session_scope(engine) as s:
        record_actuals(s, settings, outcomes)
    with session_scope(engine) as s:
        out = quality.summary(s, settings).model_dump()
        day = quality.window_metrics(s, family, 24).model_dump()
        week = quality.window_metrics(s, family, 168).model_dump()
        found = quality.anomalies(s, family, settings.anomaly_threshold, 24, limit=0).model_dump()
    assert out["total_predictions"] == 180
    assert out["metrics_24h"]["count"] == 60 and out["metrics_7d"]["count"] == 120
    assert out["metrics_7d"]["labeled_count"] == 80 and out["metrics_7d"]["lift"]["count"] == 80
    _same_figures(out["metrics_24h"], day)
    _same_figures(out["metrics_7d"], week)
    assert out["anomalies_count"] == found["count"]
    # And the week's figures are scikit-learn's on the rows of both ranges.
    week_rows = {r["request_id"]: r for rows in groups[:2] for r in rows[:40]}
    known = [
        (week_rows[o["request_id"]], o["actual"]) for o in outcomes if o["request_id"] in week_rows
    ]
    y_pred = np.array([r["prediction"] for r, _ in known])
    y_true = np.array([a for _, a in known])
    if family == "delay":
        assert out["metrics_7d"]["mae"] == pytest.approx(
            mean_absolute_error(y_true, y_pred), **APPROX
        )
    else:  # a classifier: no error between labels, accuracy and F1 instead
        assert out["metrics_7d"]["mae"] is None
        assert out["metrics_7d"]["accuracy_rate"] == pytest.approx(
            accuracy_score(y_true, y_pred), **APPROX
        )
        assert out["metrics_7d"]["f1"] == pytest.approx(f1_score(y_true, y_pred), **APPROX)


def test_monitoring_queries_use_the_family_created_index(settings, engine):
    """Every prediction_log query of summary(), window_metrics() and daily_metrics() can be
    answered by a range of ix_prediction_log_family_created (migration 0002)."""
    from sqlalchemy import event

    _seed(engine, settings, "classification", n=50, labeled=30, seed=8)
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM prediction_log" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with session_scope(engine) as s:
            quality.summary(s, settings)
            quality.window_metrics(s, "classification", 24)
            quality.daily_metrics(s, "classification", 7)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(seen) >= 5
    with engine.connect() as conn:
        for statement, parameters in seen:
            if conn.dialect.name == "sqlite":
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
                text = " ".join(str(row[-1]) for row in plan)
            else:
                # A few rows: the planner would rightly scan the table; ask whether it can
                # use the index at all.
                conn.exec_driver_sql("SET enable_seqscan = off")
                plan = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
                text = " ".join(str(row[0]) for row in plan)
            assert "ix_prediction_log_family_created" in text, (statement, text)
        conn.rollback()
