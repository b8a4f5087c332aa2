"""The feature-flag endpoints against the real app, its predictor and its database."""

from __future__ import annotations

import dataclasses

import pytest

from ia_continu.serve import flag
from ia_continu.serve.bucketing import in_share
from ia_continu.store.engine import session_scope
from tests.conftest import ADMIN

FF = "/api/feature-flags"


def _status(client) -> dict:
    r = client.get(f"{FF}/status")
    assert r.status_code == 200, r.text
    return r.json()


def _db_state(client) -> flag.RolloutState:
    runtime = client.app.state.runtime
    with session_scope(runtime.engine) as s:
        return flag.read_state(s, runtime.settings)


def test_status_has_config_stats_and_health(client):
    body = _status(client)
    assert body["config"] == {
        "ML_ENABLED": True,
        "ML_TRAFFIC_PERCENTAGE": 100.0,
        "FALLBACK_ON_ERROR": True,
        "SHADOW_RATE": pytest.approx(0.1),
    }
    assert {
        "total_requests",
        "ml_requests",
        "ml_successes",
        "ml_failures",
        "fallback_requests",
        "ml_success_rate",
        "ml_usage_rate",
    } <= set(body["stats"])
    assert body["health"]["status"] in {"healthy", "degraded", "critical"}


def test_enable_percentage_disable_round_trip_is_stored(client):
    r = client.post(f"{FF}/ml/enable", json={"percentage": 25}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["message"] == "ML enabled at 25%"
    assert r.json()["status"]["config"]["ML_TRAFFIC_PERCENTAGE"] == 25
    assert (_db_state(client).enabled, _db_state(client).percentage) == (True, 25)

    r = client.post(f"{FF}/ml/percentage", json={"percentage": 60}, headers=ADMIN)
    assert r.status_code == 200 and _db_state(client).percentage == 60

    r = client.post(f"{FF}/ml/disable", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"]["config"]["ML_ENABLED"] is False
    assert _db_state(client).enabled is False
    # This replica's cache saw the change at once.
    assert client.app.state.runtime.flags.get().enabled is False

    r = client.post(f"{FF}/ml/enable", headers=ADMIN)  # no body: keep the share
    assert r.json()["message"] == "ML enabled at 60%" and _db_state(client).enabled

    r = client.post(
        f"{FF}/ml/config", json={"fallback_on_error": False, "shadow_rate": 0.5}, headers=ADMIN
    )
    assert r.status_code == 200
    state = _db_state(client)
    assert (state.fallback_on_error, state.shadow_rate) == (False, 0.5)


@pytest.mark.parametrize(
    ("path", "payload", "fragment"),
    [
        ("/ml/enable", {"percentage": 101}, "less than or equal to 100"),
        ("/ml/percentage", {"percentage": -1}, "greater than or equal to 0"),
        ("/ml/percentage", {}, "Field required"),
        ("/ml/percentage", {"percentage": "lots"}, "valid number"),
        ("/ml/config", {"shadow_rate": 2}, "less than or equal to 1"),
        ("/ml/config", {}, "fallback_on_error and/or shadow_rate"),
    ],
)
def test_bad_values_are_422_with_a_clear_message(client, path, payload, fragment):
    r = client.post(FF + path, json=payload, headers=ADMIN)
    assert r.status_code == 422
    assert fragment in r.text
    assert _db_state(client).percentage == 100  # nothing changed


def test_25_percent_through_the_real_predictor(trained_client):
    client = trained_client
    client.post(f"{FF}/ml/enable", json={"percentage": 25}, headers=ADMIN)
    client.post(f"{FF}/ml/config", json={"shadow_rate": 0}, headers=ADMIN)
    ids = [f"ride-{i}" for i in range(10_000)]
    body = {"features": [[0.1, 0.2]] * len(ids), "request_ids": ids}
    r = client.post("/predict/batch", json=body)
    assert r.status_code == 200, r.text
    decisions = r.json()["decision"]
    share = decisions.count("ml") / len(decisions)
    assert abs(share - 0.25) <= 0.02
    assert set(decisions) == {"ml", "fallback_share"}
    # Sticky: the same ids get the same decisions again, and they match in_share.
    again = client.post("/predict/batch", json=body).json()["decision"]
    assert again == decisions
    assert [d == "ml" for d in decisions] == [in_share(i, 25) for i in ids]

    # 20,000 rows may take longer to write than the status route waits for (2 s).
    assert client.app.state.runtime.writer.flush(timeout=60)
    stats = _status(client)["stats"]
    assert stats["total_requests"] == 20_000
    assert stats["ml_requests"] == 2 * decisions.count("ml")
    assert stats["fallback_requests"] == 2 * decisions.count("fallback_share")


def _break_the_model(client) -> None:
    # A fault we cannot cause for real: the served model's scorer raises.
    holder = client.app.state.runtime.holder

    def broken(X):
        raise RuntimeError("injected model failure")

    holder.current = dataclasses.replace(holder.current, score=broken)


def test_injected_model_failure_falls_back_and_is_counted(trained_client):
    client = trained_client
    client.post(f"{FF}/reset-stats", headers=ADMIN)
    _break_the_model(client)
    for i in range(3):
        r = client.post("/predict", json={"features": [0.5, 0.1], "request_id": f"f{i}"})
        assert r.status_code == 200
        assert (r.json()["served_by"], r.json()["decision"]) == ("fallback", "fallback_error")
    body = _status(client)
    assert body["stats"]["ml_failures"] == 3 and body["stats"]["ml_requests"] == 3
    assert body["stats"]["ml_successes"] == 0
    health = client.get(f"{FF}/ml/health").json()
    assert health["error_rate"] == 1.0 and health["status"] == "degraded"  # < 100 ML requests

    # With fallback_on_error off, the failure is the client's answer: 503, still counted.
    client.post(f"{FF}/ml/config", json={"fallback_on_error": False}, headers=ADMIN)
    r = client.post("/predict", json={"features": [0.5, 0.1], "request_id": "f-strict"})
    assert r.status_code == 503 and "injected model failure" in r.json()["detail"]


def test_reset_stats_starts_counting_from_now(trained_client):
    client = trained_client
    for i in range(4):
        client.post("/predict", json={"features": [0.5, 0.1], "request_id": f"s{i}"})
    assert _status(client)["stats"]["total_requests"] == 4
    r = client.post(f"{FF}/reset-stats", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"]["stats"]["total_requests"] == 0
    client.post("/predict", json={"features": [0.5, 0.1], "request_id": "after"})
    assert _status(client)["stats"]["total_requests"] == 1


def test_error_rate_alarm_fires_after_100_ml_requests_and_health_is_critical(trained_client):
    client = trained_client
    client.post(f"{FF}/ml/config", json={"shadow_rate": 0}, headers=ADMIN)
    _break_the_model(client)
    alarm = client.app.state.runtime.predictor.alarm
    ids = [f"boom-{i}" for i in range(99)]
    client.post("/predict/batch", json={"features": [[0.1, 0.2]] * 99, "request_ids": ids})
    assert not alarm.firing  # 99 ML requests: not enough to judge
    client.post("/predict", json={"features": [0.1, 0.2], "request_id": "boom-99"})
    assert alarm.firing
    assert client.app.state.runtime.writer.flush(timeout=30)
    health = client.get(f"{FF}/ml/health").json()
    assert health["status"] == "critical" and health["ml_requests"] == 100
    assert "above 20%" in health["reason"]
