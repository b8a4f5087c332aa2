"""The drift check also judges the model's outputs, on SQLite and PostgreSQL: the champion's
answers against its answers on its training data, and the known outcomes against the training
labels. Reported apart from the inputs, stored, and served by GET /api/drift/latest."""

from __future__ import annotations

import numpy as np
import pytest

from ia_continu.families import get_family
from ia_continu.watch.drift import RecentInputs, run_drift_check
from tests.conftest import ADMIN
from tests.watch.test_drift_declared import CATEGORICAL_TESTS, NUMERIC_TESTS
from tests.watch.test_estimates import post_outcomes, serve, train

RECENT = RecentInputs(min_rows=100)


def check(client, model: str | None = None):
    runtime = client.app.state.runtime
    service = runtime.model(model)
    return run_drift_check(service.settings, runtime.engine, RECENT)


@pytest.mark.parametrize(
    ("name", "methods"), [("classification", CATEGORICAL_TESTS), ("delay", NUMERIC_TESTS)]
)
def test_clean_traffic_neither_predictions_nor_outcomes_drift(make_client, name, methods):
    client = make_client(family=name)
    family = get_family(name)
    train(client, 3000, seed=1)
    X, y = family.sample(400, rng=np.random.default_rng(5))
    ids, _ = serve(client, X, "clean")
    post_outcomes(client, ids, y.tolist())

    result = check(client)
    assert result.status == "checked" and result.dataset_drift is False
    assert (result.prediction.drifted, result.target.drifted) == (False, False)
    assert result.prediction.rows == result.target.rows == 400
    # A classifier's answers and labels are tested as categories, a regressor's as numbers
    # (which test among them: Evidently picks by the row counts).
    for found in (result.prediction.method, result.target.method):
        assert found and found.lower().startswith(methods), found
    assert result.prediction.score is not None
    # The outputs are no features: never in the share of drifted features.
    assert set(result.feature_scores) == set(family.feature_names)
    assert "predictions stable, outcomes stable" in result.reason


@pytest.mark.parametrize("name", ["classification", "delay"])
def test_drifted_traffic_moves_the_predictions(make_client, name):
    client = make_client(family=name)
    family = get_family(name)
    train(client, 3000, seed=1)
    X, _ = family.sample(400, rng=np.random.default_rng(6), drift=1.0)
    serve(client, X, "drifted")

    result = check(client)
    assert result.status == "checked" and result.dataset_drift is True
    assert result.prediction.drifted is True and result.prediction.rows == 400
    # No outcome known yet: the outcomes are not judged, which is not "no drift".
    assert result.target.drifted is None and result.target.rows == 0
    assert "outcomes not judged (0 rows)" in result.reason

    body = client.get("/api/drift/latest").json()
    assert body["status"] == "drift"
    assert body["prediction_drift"] is True and body["prediction_rows"] == 400
    assert body["prediction_drift_score"] == pytest.approx(result.prediction.score)
    assert body["prediction_drift_method"] == result.prediction.method
    assert body["target_drift"] is None and body["target_rows"] == 0


def test_outcomes_that_moved_on_unchanged_inputs_are_target_drift_only(client):
    """The world changed its answers (far more positives) for the same requests: the inputs
    and the model's answers look as at training, the outcomes do not."""
    family = get_family("classification")
    train(client, 3000, seed=1)
    X, y = family.sample(500, rng=np.random.default_rng(8))
    ids, _ = serve(client, X, "concept")
    flipped = np.where(np.random.default_rng(9).random(len(y)) < 0.5, 1.0, y)
    post_outcomes(client, ids, flipped.tolist())

    result = check(client)
    assert result.dataset_drift is False and result.prediction.drifted is False
    assert result.target.drifted is True and result.target.rows == 500
    body = client.get("/api/drift/latest").json()
    # Input drift keeps its meaning: the status speaks of the inputs only.
    assert body["status"] == "ok" and body["target_drift"] is True


def test_only_the_champion_s_own_answers_are_its_predictions(client):
    """Rows the fallback answered (ML switched off) are inputs, not the champion's answers."""
    family = get_family("classification")
    train(client, 3000, seed=1)
    X, _ = family.sample(300, rng=np.random.default_rng(10))
    serve(client, X, "ml")
    r = client.post("/api/feature-flags/ml/disable", headers=ADMIN)
    assert r.status_code == 200, r.text
    X2, _ = family.sample(300, rng=np.random.default_rng(11))
    ids = [f"fb-{i}" for i in range(len(X2))]
    r = client.post("/predict/batch", json={"features": X2.tolist(), "request_ids": ids})
    assert r.status_code == 200 and set(r.json()["served_by"]) == {"fallback"}
    assert client.app.state.runtime.writer.flush(timeout=60)

    result = check(client)
    assert result.current_rows == 600 and result.prediction.rows == 300


def test_a_constant_feature_in_recent_requests_checks_without_warnings(client):
    """Every recent request leaves feature2 at 0: Evidently's correlation of a constant
    column divides 0 by 0 (warnings are errors in this suite)."""
    family = get_family("classification")
    train(client, 3000, seed=1)
    X, _ = family.sample(300, rng=np.random.default_rng(12))
    X[:, 1] = 0.0
    serve(client, X, "constant")
    result = check(client)
    assert result.status == "checked" and "feature2" in result.drifted_features
