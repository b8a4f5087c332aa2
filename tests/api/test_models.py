from __future__ import annotations

from mlflow import MlflowClient

from tests.conftest import ADMIN, train


def test_list_versions_with_metrics_and_aliases(client):
    train(client, seed=1)
    train(client, seed=2, force=True)
    body = client.get("/models").json()
    assert body["champion_version"] == "2" and body["previous_version"] == "1"
    assert [v["version"] for v in body["versions"]] == ["2", "1"]
    assert body["versions"][0]["aliases"] == ["champion"]
    assert "accuracy" in body["versions"][1]["metrics"]
    assert [h["version"] for h in body["history"]] == ["2", "1"]


def test_promote_rollback_round_trip(client):
    for seed in (1, 2, 3):
        train(client, seed=seed, force=True)
    settings = client.app.state.runtime.settings
    mc = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)

    r = client.post("/models/1/promote", json={"reason": "known good"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["champion_version"] == "1" and r.json()["served_version"] == "1"
    assert (
        str(mc.get_model_version_by_alias(settings.registered_model_name, "champion").version)
        == "1"
    )

    r = client.post("/models/rollback", headers=ADMIN)
    assert r.json()["champion_version"] == "3"  # back to what was champion before
    r = client.post("/models/rollback", headers=ADMIN)
    assert r.json()["champion_version"] == "2"
    assert client.post("/predict", json={"features": [0, 0]}).json()["model_version"] == "2"
    assert (
        str(mc.get_model_version_by_alias(settings.registered_model_name, "champion").version)
        == "2"
    )
    events = client.get("/models/events").json()
    assert [e["event"] for e in events[:3]] == ["rollback", "rollback", "promote"]


def test_rollback_with_nothing_before_is_409(client):
    assert client.post("/models/rollback", headers=ADMIN).status_code == 409
    train(client)
    r = client.post("/models/rollback", headers=ADMIN)
    assert r.status_code == 409 and "first" in r.json()["detail"]


def test_promote_unknown_version_is_404(client):
    train(client)
    for version in ("42", "abc"):
        r = client.post(f"/models/{version}/promote", headers=ADMIN)
        assert r.status_code == 404 and version in r.json()["detail"]
    assert "versions are numbers" in r.json()["detail"]


def test_events_are_typed_rows_newest_first(client):
    train(client)
    events = client.get("/models/events", params={"limit": 1}).json()
    assert len(events) == 1
    assert set(events[0]) == {
        "id",
        "event",
        "version",
        "previous_version",
        "reason",
        "metrics",
        "at",
    }
    assert events[0]["event"] == "promote" and events[0]["version"] == "1"
    assert client.get("/models/events", params={"limit": 0}).status_code == 422


def test_domain_errors_are_documented_with_their_status():
    from api.main import create_app

    paths = create_app().openapi()["paths"]
    documented = {
        ("/models/{version}/promote", "404"),
        ("/models/rollback", "409"),
        ("/retrain", "404"),
        ("/retrain", "409"),
        ("/retrain", "422"),
    }
    for path, status in documented:
        response = paths[path]["post"]["responses"][status]
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorPublic"}, (path, status)
    assert "UntrainableDataset" in paths["/retrain"]["post"]["responses"]["422"]["description"]
    assert paths["/models/events"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["items"] == {"$ref": "#/components/schemas/ModelEventRecord"}


def test_registry_actions_need_the_key(client):
    assert client.post("/models/1/promote").status_code == 401
    assert client.post("/models/rollback", headers={"X-API-Key": "x"}).status_code == 403
