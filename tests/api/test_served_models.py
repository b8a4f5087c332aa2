"""What an operator sees of every served model: ``/health`` lists each one this process
serves (champion, served version, engine, load error), ``/metrics`` counts its predictions
under its own ``model_type``."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN, train

BIKE = {"hour": 8, "weekday": 1, "weather": "rain", "counter": "station"}


def _prediction_counts(client) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "predictions_total":
                model = sample.labels["model_type"]
                counts[model] = counts.get(model, 0.0) + sample.value
    return counts


def test_health_lists_each_served_model_and_metrics_count_its_predictions(client):
    body = client.get("/health").json()
    # At start only the default model is served, on its fallback.
    assert body["models"] == [
        {
            "name": body["family"],
            "champion_version": None,
            "served_version": None,
            "serving_engine": None,
            "load_error": None,
        }
    ]

    train(client)
    generate = {"samples": 300, "seed": 1}
    r = client.post("/models/bike_traffic/generate", json=generate, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post("/models/bike_traffic/retrain", json={"reason": "test"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["promoted"], r.text
    before = _prediction_counts(client).get("bike_traffic", 0.0)
    for hour in (7, 8, 9):
        r = client.post("/models/bike_traffic/predict", json={"features": {**BIKE, "hour": hour}})
        assert r.status_code == 200, r.text

    body = client.get("/health").json()
    models = {m["name"]: m for m in body["models"]}
    assert list(models) == [body["family"], "bike_traffic"]  # the default first
    bike = models["bike_traffic"]
    assert bike["champion_version"] == bike["served_version"] == "1"
    assert bike["serving_engine"] in ("onnxruntime", "sklearn") and bike["load_error"] is None
    assert models[body["family"]]["served_version"] == body["checks"]["served_version"] == "1"
    # The fields that were there before are unchanged.
    assert body["status"] == "ok" and body["champion_version"] == "1"

    assert _prediction_counts(client)["bike_traffic"] == before + 3
