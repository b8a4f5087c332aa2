"""One app serves several declared models at once: the default ``classification`` at the first
API's paths, ``iris`` and ``bike_traffic`` under ``/models/{model}``. Each has its own data,
champion, rollout and metrics; changing one leaves the others alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ia_continu.catalog import reload_catalog
from ia_continu.declared import DeclarationError
from tests.conftest import ADMIN

ROOT = Path(__file__).resolve().parent.parent.parent

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
BIKES = {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}
MODELS = ("classification", "iris", "bike_traffic")


def _train(client, model: str, seed: int) -> dict:
    r = client.post(f"/models/{model}/generate", json={"samples": 300, "seed": seed}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["family"] == model
    r = client.post(f"/models/{model}/retrain", json={"force": True}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def _champion(client, model: str) -> str | None:
    r = client.get(f"/models/{model}")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == model
    return r.json()["champion_version"]


def _predict(client, model: str, features: dict, request_id: str | None = None) -> dict:
    body: dict = {"features": features}
    if request_id:
        body["request_id"] = request_id
    r = client.post(f"/models/{model}/predict", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_three_models_train_and_answer_side_by_side(client):
    for model in MODELS:
        assert _train(client, model, seed=1)["model_version"] == "1"
    listed = {model: client.get(f"/models/{model}").json() for model in MODELS}
    assert {m: (v["served_version"], v["task"]) for m, v in listed.items()} == {
        "classification": ("1", "classification"),
        "iris": ("1", "multiclass"),
        "bike_traffic": ("1", "regression"),
    }

    iris = _predict(client, "iris", SETOSA)
    assert iris["prediction"] == "setosa" and iris["served_by"] == "ml"
    bikes = _predict(client, "bike_traffic", BIKES)
    assert isinstance(bikes["prediction"], float) and bikes["served_by"] == "ml"
    # The default routes still serve the default model, through its own champion.
    r = client.post("/predict", json={"features": [3.0, -1.0]})
    assert r.status_code == 200, r.text
    assert r.json()["prediction"] in (0, 1) and r.json()["served_by"] == "ml"
    assert client.get("/models").json()["model"] == "classification"

    # A feature of another model is refused, naming what was wrong.
    r = client.post("/models/iris/predict", json={"features": BIKES})
    assert r.status_code == 422, r.text
    assert "sepal_length" in r.text or "hour" in r.text


def test_promote_and_rollback_touch_one_model_only(client):
    for seed in (1, 2):
        _train(client, "iris", seed)
    _train(client, "bike_traffic", 1)
    assert _champion(client, "iris") == "2" and _champion(client, "bike_traffic") == "1"

    r = client.post("/models/iris/1/promote", json={"reason": "known good"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["served_version"] == "1"
    assert _champion(client, "iris") == "1" and _champion(client, "bike_traffic") == "1"
    assert _champion(client, "classification") is None

    # bike_traffic has nothing to roll back to: its own 409, iris untouched.
    r = client.post("/models/bike_traffic/rollback", headers=ADMIN)
    assert r.status_code == 409, r.text
    assert _champion(client, "iris") == "1"

    r = client.post("/models/iris/rollback", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert _champion(client, "iris") == "2" and _champion(client, "bike_traffic") == "1"
    history = client.get("/models/bike_traffic").json()["history"]
    assert [event["action"] for event in history] == ["promote"]

    # The version numbers are per model: version 2 of bike_traffic does not exist.
    r = client.post("/models/bike_traffic/2/promote", headers=ADMIN)
    assert r.status_code == 404, r.text


def test_disabling_ml_for_one_model_leaves_the_others_on_ml(client):
    _train(client, "iris", 1)
    _train(client, "bike_traffic", 1)
    r = client.post("/models/iris/rollout/ml/disable", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["family"] == "iris"

    iris = _predict(client, "iris", SETOSA)
    assert iris["decision"] == "fallback_disabled" and iris["served_by"] == "fallback"
    assert iris["prediction"] in {"setosa", "versicolor", "virginica"}  # a label, not an index
    bikes = _predict(client, "bike_traffic", BIKES)
    assert bikes["decision"] == "ml" and bikes["served_by"] == "ml"

    status = client.get("/models/bike_traffic/rollout/status").json()
    assert status["family"] == "bike_traffic" and status["config"]["ML_ENABLED"] is True
    assert client.get("/api/feature-flags/status").json()["config"]["ML_ENABLED"] is True

    r = client.post("/models/iris/rollout/ml/enable", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert _predict(client, "iris", SETOSA)["served_by"] == "ml"


def test_outcomes_change_only_their_model_metrics(client):
    _train(client, "iris", 1)
    _train(client, "bike_traffic", 1)
    for i in range(4):
        _predict(client, "iris", SETOSA, request_id=f"iris-{i}")
    _predict(client, "bike_traffic", BIKES, request_id="bikes-0")
    # Predictions are logged in the background; posting outcomes writes the queue first, so
    # after this (an id nobody has) every row above is in the database.
    flush = {"actuals": [{"request_id": "nobody", "actual": 1.0}]}
    r = client.post("/models/bike_traffic/actuals", json=flush, headers=ADMIN)
    assert r.status_code == 200 and r.json()["unknown_request_ids"] == ["nobody"], r.text
    before_bikes = client.get("/models/bike_traffic/monitoring/metrics").json()
    before_default = client.get("/api/ml-monitoring/metrics").json()

    # Class labels as outcomes: three right, one wrong.
    outcomes = [{"request_id": f"iris-{i}", "actual": "setosa"} for i in range(3)]
    outcomes.append({"request_id": "iris-3", "actual": "virginica"})
    r = client.post("/models/iris/actuals", json={"actuals": outcomes}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 4 and r.json()["unknown_request_ids"] == []

    iris = client.get("/models/iris/monitoring/metrics").json()
    assert iris["family"] == "iris"
    assert iris["count"] == 4 and iris["labeled_count"] == 4
    assert iris["accuracy_rate"] == 0.75
    assert client.get("/models/bike_traffic/monitoring/metrics").json() == before_bikes
    assert before_bikes["labeled_count"] == 0 and before_bikes["count"] == 1
    after_default = client.get("/api/ml-monitoring/metrics").json()
    assert after_default == before_default and after_default["family"] == "classification"

    # A label of no declared class is refused, naming the classes; an iris request id is
    # unknown to bike_traffic.
    bad = {"actuals": [{"request_id": "iris-0", "actual": "tulip"}]}
    r = client.post("/models/iris/actuals", json=bad, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert "setosa" in r.text
    cross = {"actuals": [{"request_id": "iris-0", "actual": 12.0}]}
    r = client.post("/models/bike_traffic/actuals", json=cross, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["unknown_request_ids"] == ["iris-0"]


def test_an_unknown_model_is_a_404_listing_the_declared_names(client):
    for path in ("/models/tulips", "/models/tulips/predict", "/models/tulips/monitoring/metrics"):
        r = client.get(path) if "predict" not in path else client.post(path, json={})
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"] == (
            "no model named 'tulips'; declared: bike_traffic, classification, delay, iris"
        )


def test_a_broken_declaration_among_good_ones_stops_the_start_naming_each_fault(
    make_client, tmp_path
):
    """Every problem of the folder in one message (file and field), nothing served; once
    fixed, the user's models are served beside the built-ins."""
    churn = (ROOT / "examples" / "models" / "churn.toml").read_text()
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "churn.toml").write_text(churn)
    typo = folder / "churn2.toml"
    typo.write_text(churn.replace('"churn"', '"churn2"').replace('"integer"', '"int"', 1))
    clash = folder / "flowers.toml"
    clash.write_text(churn.replace('name = "churn"', 'name = "iris"'))
    reload_catalog()
    try:
        with pytest.raises(DeclarationError) as caught:
            make_client(models_dir=folder)
        message = str(caught.value)
        assert f"{typo}: features[0].type: 'int' is not one of" in message, message
        assert f"{clash}: name: 'iris' is already declared by" in message, message
        assert "churn.toml:" not in message.replace(str(typo), "")

        typo.write_text(churn.replace('"churn"', '"churn2"'))
        clash.unlink()
        reload_catalog()
        client = make_client(models_dir=folder)
        names = [m["name"] for m in client.get("/models/declared").json()]
        assert names == ["bike_traffic", "classification", "delay", "iris", "churn", "churn2"]
        row = {"tenure_months": 3, "monthly_charges": 80.0, "contract": "monthly"}
        row["support_calls"] = 1
        r = client.post("/models/churn2/predict", json={"features": row})
        assert r.status_code == 200, r.text
        # No version yet: the fallback answers, with a declared label.
        assert r.json()["decision"] == "fallback_no_model"
        assert r.json()["prediction"] in ("stayed", "left")
    finally:
        reload_catalog()
