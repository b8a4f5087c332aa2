"""Drift of a declared model's inputs covers its categories: Evidently gets the declared values
(category texts, booleans) with the declared column types, so a category is tested as one."""

from __future__ import annotations

import numpy as np
import pytest

from ia_continu.catalog import model_settings
from ia_continu.families import get_family
from ia_continu.watch.drift import RecentInputs, run_drift_check
from tests.conftest import ADMIN
from tests.factories import insert_rows, prediction_rows

MODEL = "bike_traffic"
CATEGORICAL_TESTS = ("chi-square", "z-test", "jensen-shannon")
NUMERIC_TESTS = ("k-s", "wasserstein")


@pytest.fixture
def bike_champion(settings_factory, make_client):
    """A bike_traffic champion trained through the API on its simulator's data."""
    settings = settings_factory()
    client = make_client()
    r = client.post(
        f"/models/{MODEL}/generate",
        json={"samples": 1500, "seed": 3, "drift": False},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/models/{MODEL}/retrain", json={"reason": "drift test"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["promoted"], r.text
    return model_settings(settings, MODEL), client.app.state.runtime.engine


def _log_traffic(engine, X: np.ndarray) -> None:
    rows = prediction_rows("delay", len(X), rng=np.random.default_rng(0), prefix="bike")
    for row, x in zip(rows, X.tolist(), strict=True):
        row["family"], row["features"] = MODEL, x
    insert_rows(engine, rows)


def _traffic(n: int, seed: int, *, weather: str | None = None) -> np.ndarray:
    family = get_family(MODEL)
    X, _ = family.sample(n, rng=np.random.default_rng(seed))
    if weather is not None:
        column = family.feature_names.index("weather")
        codes = family.declaration.features[column].values or []
        X[:, column] = float(codes.index(weather))
    return X


def test_shifted_weather_is_a_drifted_category(bike_champion):
    settings, engine = bike_champion
    _log_traffic(engine, _traffic(400, seed=21, weather="snow"))
    result = run_drift_check(settings, engine, RecentInputs(min_rows=100))
    assert result.status == "checked", result.reason
    assert "weather" in result.drifted_features, result
    # Categories and booleans tested with Evidently's categorical tests, numbers with its
    # numeric ones (which it picks among depends on the row counts).
    methods = {k: v.lower() for k, v in result.feature_methods.items()}
    for name in ("weather", "counter", "holiday"):
        assert methods[name].startswith(CATEGORICAL_TESTS), methods
    for name in ("hour", "weekday"):
        assert methods[name].startswith(NUMERIC_TESTS), methods
    assert set(result.feature_scores) == set(get_family(MODEL).feature_names)


def test_unshifted_traffic_has_no_drifted_category(bike_champion):
    settings, engine = bike_champion
    _log_traffic(engine, _traffic(400, seed=22))
    result = run_drift_check(settings, engine, RecentInputs(min_rows=100))
    assert result.status == "checked", result.reason
    assert "weather" not in result.drifted_features and "counter" not in result.drifted_features
    assert result.dataset_drift is False, result
