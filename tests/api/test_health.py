from __future__ import annotations

from tests.conftest import train


def test_health_before_any_model_is_degraded_but_up(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["model_loaded"] is False
    assert "POST /retrain" in body["reason"]
    assert body["version"] and body["timestamp"]


def test_health_ok_with_a_champion(client):
    train(client)
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["champion_version"] == "1"
    assert body["checks"]["served_version"] == "1"


def test_status_reports_model_uptime_and_predictions(trained_client):
    for _ in range(3):
        assert trained_client.post("/predict", json={"features": [0.1, 0.2]}).status_code == 200
    trained_client.app.state.runtime.writer.flush()
    body = trained_client.get("/status").json()
    assert body["model"]["version"] == "1"
    assert body["model"]["type"] == "LogisticRegression"
    assert body["api"]["total_predictions"] == 3
    assert body["api"]["uptime_seconds"] >= 0
