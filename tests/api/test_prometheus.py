"""``GET /metrics`` is valid Prometheus text with the series the dashboards read."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import train


def test_metrics_parse_and_hold_seed_002_series(client):
    train(client)
    assert client.post("/predict", json={"features": [0.1, 0.2]}).status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {
        s.name: s for family in text_string_to_metric_families(r.text) for s in family.samples
    }
    for name in (
        "predictions_total",
        "prediction_latency_seconds_bucket",
        "prediction_latency_seconds_count",
        "active_models_count",
        "training_total",
    ):
        assert name in samples, name
    assert samples["active_models_count"].value == 1
    families = {f.name: f.type for f in text_string_to_metric_families(r.text)}
    assert families["prediction_latency_seconds"] == "histogram"
    assert families["predictions"] == "counter" and families["training"] == "counter"
