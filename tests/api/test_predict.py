from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import select

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog
from tests.conftest import ADMIN, train


def _logged(client, request_id=None):
    runtime = client.app.state.runtime
    assert runtime.writer.flush()
    with session_scope(runtime.engine) as s:
        q = select(PredictionLog)
        if request_id:
            q = q.where(PredictionLog.request_id == request_id)
        return s.scalars(q.order_by(PredictionLog.id)).all()


def test_before_any_model_the_fallback_answers_and_says_so(client):
    r = client.post("/predict", json={"features": [1.0, 0.2], "request_id": "early"})
    assert r.status_code == 200
    body = r.json()
    assert body["served_by"] == "fallback"
    assert body["decision"] == "fallback_no_model"
    assert body["model_version"] == "fallback"
    assert body["prediction"] == 1  # feature1 >= feature2
    (row,) = _logged(client, "early")
    assert row.decision == "fallback_no_model"


def test_prediction_matches_the_champion_and_is_logged(trained_client):
    from ia_continu.learn import registry

    runtime = trained_client.app.state.runtime
    r = trained_client.post(
        "/predict",
        json={
            "features": [0.3, -0.4],
            "request_id": "r-1",
            "booking_id": "b-9",
            "driver_id": "d-2",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    pipeline = registry.load_pipeline(runtime.settings, "1")
    p1 = pipeline.predict_proba(np.array([[0.3, -0.4]]))[0, 1]
    assert body["prediction"] == int(p1 >= 0.5)
    assert body["probability"] == pytest.approx(p1, abs=1e-6)
    assert body["confidence"] == pytest.approx(max(p1, 1 - p1), abs=1e-6)
    assert body["model_version"] == "1" and body["served_by"] == "ml"
    (row,) = _logged(trained_client, "r-1")
    assert (row.booking_id, row.driver_id, row.model_version) == ("b-9", "d-2", "1")
    assert row.features == [0.3, -0.4]
    assert row.prediction == body["prediction"] and row.latency_ms > 0
    assert row.decision == "ml" and row.rollout_percentage == 100


def test_features_by_name_and_context(trained_client):
    r = trained_client.post(
        "/predict",
        json={
            "features": {"feature2": 1.0, "feature1": 2.0},
            "context": {"booking_id": "b1"},
            "request_id": "n1",
        },
    )
    assert r.status_code == 200
    (row,) = _logged(trained_client, "n1")
    assert row.features == [2.0, 1.0] and row.booking_id == "b1"


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"features": [1.0]}, "expected 2 features"),
        ({"features": [1.0, 2.0, 3.0]}, "expected 2 features"),
        ({"features": ["a", 2.0]}, "features"),
        ({"features": {"feature1": 1.0}}, "missing ['feature2']"),
        ({"features": {"feature1": 1.0, "feature2": 1.0, "x": 1}}, "unknown ['x']"),
        ({}, "features"),
        ({"features": [1.0, 2.0], "request_id": ""}, "request_id"),
        ({"features": [1.0, 2.0], "surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_clear_422(trained_client, payload, fragment):
    r = trained_client.post("/predict", json=payload)
    assert r.status_code == 422
    assert fragment in r.text


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_features_are_rejected(trained_client, bad):
    r = trained_client.post(
        "/predict",
        content=f'{{"features": [{bad}, 1.0]}}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert "finite" in r.text


def test_batch_answers_every_row_like_single_calls(trained_client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).round(4).tolist()
    ids = [f"batch-{i}" for i in range(200)]
    r = trained_client.post("/predict/batch", json={"features": X, "request_ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 200 and body["request_ids"] == ids
    assert body["model_version"] == "1"
    singles = [
        trained_client.post("/predict", json={"features": x}).json()["prediction"] for x in X[:20]
    ]
    assert body["predictions"][:20] == singles
    rows = _logged(trained_client)
    assert {r.request_id for r in rows} >= set(ids)


@pytest.mark.parametrize(
    "payload, code, fragment",
    [
        ({"features": []}, 422, "non-empty"),
        ({"features": [[1.0, 2.0], [1.0]]}, 422, "2 numbers"),
        ({"features": [[1.0, "x"]]}, 422, "numbers"),
        ({"features": [1.0, 2.0]}, 422, "list of rows"),
        ({"rows": [[1.0, 2.0]]}, 422, "'features'"),
        ({"features": [[1.0, 2.0]], "request_ids": ["a", "b"]}, 422, "one entry per row"),
    ],
)
def test_batch_bad_input(trained_client, payload, code, fragment):
    r = trained_client.post("/predict/batch", json=payload)
    assert r.status_code == code
    assert fragment in r.json()["detail"]


def test_batch_rejects_non_json_and_too_many_rows(make_client):
    client = make_client(max_batch_rows=10)
    r = client.post(
        "/predict/batch", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post("/predict/batch", json={"features": [[0.0, 0.0]] * 11})
    assert r.status_code == 413 and "at most 10" in r.json()["detail"]


def test_delay_family_gives_risk_and_factors(make_client):
    client = make_client(family="delay")
    train(client, samples=2000)
    r = client.post("/predict", json={"features": [18.0, 8, 1, 2, 0.8], "booking_id": "B1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["risk_level"] in {"low", "medium", "high"}
    assert body["contributing_factors"] and len(body["contributing_factors"]) <= 3
    assert 0 < body["confidence"] < 1
    assert not math.isnan(body["prediction"])
    bad = client.post("/predict", json={"features": [18.0, 25, 1, 2, 0.8]})
    assert bad.status_code == 422 and "hour" in bad.json()["detail"]


def test_clean_shutdown_keeps_every_answered_prediction(make_client):
    client = make_client(log_flush_interval_ms=5000, log_batch_size=100000)
    ids = [f"s-{i}" for i in range(300)]
    for rid in ids:
        assert (
            client.post("/predict", json={"features": [0.1, 0.1], "request_id": rid}).status_code
            == 200
        )
    runtime = client.app.state.runtime
    assert runtime.writer.pending == 300  # nothing written yet: the batch window is long
    client.__exit__(None, None, None)  # lifespan shutdown drains the queue
    with session_scope(runtime.engine) as s:
        logged = set(s.scalars(select(PredictionLog.request_id)).all())
    assert logged == set(ids)


# Per family: training rows, feature rows to serve, the outcome of the i-th request, and the
# lift's metric: (per-row figure, sign: +1 when a higher figure is better).
SHADOW_CASES = [
    pytest.param(
        "classification",
        1000,
        [[0.3, -0.4], [-1.2, 0.5], [0.8, 0.9], [-0.1, -0.7]],
        lambda i: float(i % 2),
        ("accuracy", lambda p, y: p == y, +1),
        id="classification",
    ),
    pytest.param(
        "delay",
        2000,
        [[18.0, 8, 1, 2, 0.8], [3.5, 23, 6, 0, 0.1], [42.0, 17, 2, 1, 0.5]],
        lambda i: 5.0 + (i % 7) * 3.0,
        ("mae", lambda p, y: np.abs(p - y), -1),
        id="delay",
    ),
]


@pytest.mark.parametrize(("family", "samples", "rows", "outcome", "metric"), SHADOW_CASES)
def test_shadow_rows_carry_both_answers_and_give_the_lift(
    make_client, family, samples, rows, outcome, metric
):
    """Served through the real predictor with every request in the shadow sample: each logged
    row keeps the ML and the fallback answer, whoever served it, and once the outcomes are
    posted the monitoring lift compares the two on exactly those rows."""
    from ia_continu.families import get_family

    client = make_client(family=family)
    train(client, samples=samples)
    # Half the ids go to ML, half to the fallback: the shadow answer is the other one.
    r = client.post("/api/feature-flags/ml/enable", json={"percentage": 50}, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post("/api/feature-flags/ml/config", json={"shadow_rate": 1.0}, headers=ADMIN)
    assert r.status_code == 200, r.text

    X = [rows[i % len(rows)] for i in range(40)]
    ids = [f"shadow-{family}-{i}" for i in range(40)]
    batch = client.post("/predict/batch", json={"features": X[:-1], "request_ids": ids[:-1]})
    assert batch.status_code == 200, batch.text
    single = client.post("/predict", json={"features": X[-1], "request_id": ids[-1]})
    assert single.status_code == 200, single.text
    served_by = [*batch.json()["served_by"], single.json()["served_by"]]
    assert set(served_by) == {"ml", "fallback"}

    logged = {row.request_id: row for row in _logged(client)}
    assert set(logged) == set(ids)
    fallback = get_family(family).fallback(np.array(X, dtype=float)).prediction
    for i, request_id in enumerate(ids):
        row = logged[request_id]
        assert row.ml_prediction is not None and row.fallback_prediction is not None
        assert row.fallback_prediction == pytest.approx(fallback[i])
        assert row.served_by == served_by[i]
        served = row.ml_prediction if row.served_by == "ml" else row.fallback_prediction
        assert row.prediction == pytest.approx(served)
        assert row.decision == ("ml" if row.served_by == "ml" else "fallback_share")

    actuals = {request_id: outcome(i) for i, request_id in enumerate(ids)}
    r = client.post(
        "/api/actuals",
        json={"actuals": [{"request_id": k, "actual": v} for k, v in actuals.items()]},
        headers=ADMIN,
    )
    assert r.status_code == 200 and r.json()["updated"] == len(ids), r.text

    name, per_row, sign = metric
    y = np.array([actuals[k] for k in ids])
    ml = float(np.mean(per_row(np.array([logged[k].ml_prediction for k in ids]), y)))
    fb = float(np.mean(per_row(np.array([logged[k].fallback_prediction for k in ids]), y)))
    lift = client.get("/api/ml-monitoring/metrics", params={"hours": 1}).json()["lift"]
    assert lift["count"] == len(ids) and lift["metric"] == name
    assert lift["ml"] == pytest.approx(ml, abs=1e-6)
    assert lift["fallback"] == pytest.approx(fb, abs=1e-6)
    assert lift["lift"] == pytest.approx(sign * (ml - fb), abs=1e-6)
    stats = client.get("/api/feature-flags/status").json()["stats"]
    assert stats["shadow_requests"] == len(ids)
