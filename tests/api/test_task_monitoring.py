"""Monitoring follows the model's task, through the API: a multiclass model's window reports
accuracy and macro precision/recall/F1 (scikit-learn's, on the same rows) and no MAE/RMSE/R²;
a regressor reports MAE, RMSE and R²."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from tests.conftest import ADMIN

APPROX = {"rel": 1e-6, "abs": 1e-6}
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def _train(client, model: str) -> None:
    r = client.post(
        f"/models/{model}/generate", json={"samples": 600, "seed": 5, "drift": False}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/models/{model}/retrain", json={"reason": "test"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["promoted"], r.text


def _post_outcomes(client, model: str, actuals: list[dict]) -> None:
    # The log is written just after answering: post until every outcome found its row.
    for _ in range(100):
        r = client.post(f"/models/{model}/actuals", json={"actuals": actuals}, headers=ADMIN)
        assert r.status_code == 200, r.text
        if not r.json()["unknown_request_ids"]:
            return
    pytest.fail("outcomes never matched their logged predictions")


def test_iris_window_has_macro_figures_equal_to_scikit_learn(client):
    _train(client, "iris")
    iris = load_iris()
    species = [str(s) for s in iris.target_names]
    rng = np.random.default_rng(4)
    rows = rng.choice(len(iris.data), 90, replace=False)
    predicted, actual = [], []
    for n, i in enumerate(rows):
        features = dict(zip(FEATURES, iris.data[i].tolist(), strict=True))
        r = client.post(
            "/models/iris/predict", json={"features": features, "request_id": f"iris-{n}"}
        )
        assert r.status_code == 200, r.text
        predicted.append(r.json()["prediction"])
        # A linear model explains each answer: its top 3 declared features.
        factors = r.json()["contributing_factors"]
        assert factors and len(factors) <= 3 and set(factors) <= set(FEATURES), factors
        # Mostly the true species; every fifth a wrong one, so the figures are not all 1.
        truth = int(iris.target[i])
        actual.append(species[(truth + 1) % 3] if n % 5 == 0 else species[truth])
    _post_outcomes(
        client,
        "iris",
        [{"request_id": f"iris-{n}", "actual": a} for n, a in enumerate(actual)],
    )

    m = client.get("/models/iris/monitoring/metrics").json()
    assert m["family"] == "iris" and m["labeled_count"] == 90
    assert m["accuracy_rate"] == pytest.approx(accuracy_score(actual, predicted), **APPROX)
    for name, score in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        expected = score(actual, predicted, average="macro", zero_division=0)
        assert m[name] == pytest.approx(expected, **APPROX), name
    assert m["mae"] is None and m["rmse"] is None and m["r2"] is None

    logged = client.get("/models/iris/monitoring/predictions", params={"limit": 5}).json()
    assert all(set(p["contributing_factors"]) <= set(FEATURES) for p in logged)
    # Stored as class indices, listed with their labels too (newest first: the last posted).
    by_id = {f"iris-{n}": (p, a) for n, (p, a) in enumerate(zip(predicted, actual, strict=True))}
    for p in logged:
        assert (p["prediction_label"], p["actual_label"]) == by_id[p["request_id"]]
        assert species[int(p["prediction"])] == p["prediction_label"]

    summary = client.get("/models/iris/monitoring/summary").json()
    assert summary["metrics_24h"]["f1"] == m["f1"] and summary["metrics_24h"]["mae"] is None
    # The limits its performance alert judges: iris.toml's min_accuracy, for accuracy and F1.
    assert summary["targets"] == {
        "accuracy_rate": 0.9,
        "avg_prediction_time_ms": client.app.state.runtime.settings.latency_threshold_ms,
        "f1": 0.9,
    }
    (today,) = client.get("/models/iris/monitoring/daily", params={"days": 1}).json()
    assert today["f1"] == m["f1"] and today["r2"] is None


def test_a_regressor_window_has_errors_and_no_classifier_figures(client):
    _train(client, "bike_traffic")
    features = {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}
    preds = []
    for n in range(12):
        r = client.post(
            "/models/bike_traffic/predict",
            json={"features": {**features, "hour": 6 + n}, "request_id": f"bike-{n}"},
        )
        assert r.status_code == 200, r.text
        preds.append(r.json()["prediction"])
    actual = [round(p + (-1) ** n * (n + 1), 3) for n, p in enumerate(preds)]
    _post_outcomes(
        client,
        "bike_traffic",
        [{"request_id": f"bike-{n}", "actual": a} for n, a in enumerate(actual)],
    )
    m = client.get("/models/bike_traffic/monitoring/metrics").json()
    errors = np.array(actual) - np.array(preds)
    assert m["mae"] == pytest.approx(np.abs(errors).mean(), abs=1e-3)
    assert m["rmse"] == pytest.approx(np.sqrt((errors**2).mean()), abs=1e-3)
    assert m["r2"] is not None
    assert not {"precision", "recall", "f1"} & set(m)
