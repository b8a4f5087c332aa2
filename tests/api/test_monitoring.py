"""The monitoring endpoints: shapes, validation, and figures from the real log."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, r2_score

from tests.conftest import ADMIN
from tests.factories import actuals_for, insert_rows, prediction_rows

M = "/api/ml-monitoring"


@pytest.fixture
def delay_client(make_client):
    client = make_client(family="delay", anomaly_threshold=4.0)
    rng = np.random.default_rng(7)
    rows = prediction_rows("delay", 120, rng=rng)
    insert_rows(client.app.state.runtime.engine, rows)
    actual = actuals_for("delay", rows[:100], rng)
    items = [
        {"request_id": r["request_id"], "actual": a}
        for r, a in zip(rows[: len(actual)], actual, strict=True)
    ]
    assert client.post("/api/actuals", json={"actuals": items}, headers=ADMIN).status_code == 200
    client.expected = (np.array([r["prediction"] for r in rows[:100]]), np.array(actual))
    return client


def test_metrics_equal_scikit_learn_through_the_api(delay_client):
    y_pred, y_true = delay_client.expected
    m = delay_client.get(f"{M}/metrics", params={"hours": 24}).json()
    assert m["period_hours"] == 24 and m["count"] == 120 and m["labeled_count"] == 100
    assert m["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred), abs=1e-6)
    assert m["r2"] == pytest.approx(r2_score(y_true, y_pred), abs=1e-6)
    # A classifier's figures are left out of a regression's answer, not null.
    assert not {"precision", "recall", "f1"} & set(m)
    assert m["lift"] == {"count": 0, "metric": "mae", "ml": None, "fallback": None, "lift": None}


def test_daily_predictions_anomalies_summary(delay_client):
    y_pred, y_true = delay_client.expected
    days = delay_client.get(f"{M}/daily", params={"days": 3}).json()
    assert len(days) == 3 and sum(d["count"] for d in days) == 120

    recent = delay_client.get(f"{M}/predictions", params={"limit": 5}).json()
    assert len(recent) == 5 and {"request_id", "prediction", "actual", "error"} <= set(recent[0])

    found = delay_client.get(f"{M}/anomalies", params={"threshold": 4.0}).json()
    assert found["count"] == int(np.sum(np.abs(y_pred - y_true) > 4.0))

    summary = delay_client.get(f"{M}/summary").json()
    assert summary["total_predictions"] == 120
    assert summary["anomalies_count"] == found["count"]  # default threshold from settings
    assert summary["metrics_24h"]["mae"] == pytest.approx(
        mean_absolute_error(y_true, y_pred), abs=1e-6
    )
    assert {"ml_enabled", "ml_traffic_percentage", "ml_requests", "ml_success_rate"} <= set(
        summary["feature_flags"]
    )


@pytest.mark.parametrize(
    "query",
    [
        "/metrics?hours=0",
        "/metrics?hours=8761",
        "/metrics?hours=abc",
        "/daily?days=0",
        "/daily?days=400",
        "/predictions?limit=0",
        "/predictions?limit=5000",
        "/anomalies?threshold=-1",
        "/anomalies?threshold=nan",
        "/anomalies?hours=0",
    ],
)
def test_bad_query_parameters_are_422(client, query):
    r = client.get(M + query)
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"]


def test_empty_log_gives_zero_counts_not_errors(client):
    m = client.get(f"{M}/metrics").json()
    assert m["count"] == 0 and m["mae"] is None and m["precision"] is None
    assert client.get(f"{M}/summary").status_code == 200
