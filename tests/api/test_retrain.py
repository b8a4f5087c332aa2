from __future__ import annotations

import pytest
from mlflow import MlflowClient
from sqlalchemy import select

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DatasetSample, ModelEvent
from tests.conftest import ADMIN, train


def _events(client):
    with session_scope(client.app.state.runtime.engine) as s:
        return [(e.event, e.version) for e in s.scalars(select(ModelEvent).order_by(ModelEvent.id))]


def test_first_retrain_registers_logs_and_promotes(client):
    body = train(client, samples=1000)
    settings = client.app.state.runtime.settings
    assert body["status"] == "promoted" and body["model_version"] == "1"
    assert body["training_samples"] == 800 and body["holdout_samples"] == 200
    assert 0.8 < body["accuracy"] <= 1 and body["accuracy"] == body["metrics"]["accuracy"]
    assert set(body["metrics"]) == {"accuracy", "precision", "recall", "f1_score"}
    assert body["run_name"].startswith("retrain_")

    mc = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run = mc.get_run(body["run_id"])
    assert run.info.run_name == body["run_name"]
    assert mc.get_experiment(run.info.experiment_id).name == "ia_continu_solution"
    assert run.data.params["C"] == "1.0" and run.data.params["training_samples"] == "800"
    assert run.data.metrics["accuracy"] == pytest.approx(body["accuracy"])
    mv = mc.get_model_version_by_alias(settings.registered_model_name, "champion")
    assert str(mv.version) == "1" and mv.run_id == body["run_id"]
    assert _events(client) == [("retrain", "1"), ("promote", "1")]


def test_worse_challenger_is_rejected_and_champion_kept(client):
    from ia_continu.learn.training import _split

    train(client, samples=2000, seed=1)
    g = client.post(
        "/generate", json={"samples": 1000, "seed": 2, "drift": False}, headers=ADMIN
    ).json()["generation_id"]
    # Poison only the training part of the new dataset (same split as the trainer): the
    # challenger learns an inverted rule, and both are judged on the same clean holdout.
    with session_scope(client.app.state.runtime.engine) as s:
        rows = s.scalars(
            select(DatasetSample).where(DatasetSample.generation_id == g).order_by(DatasetSample.id)
        ).all()
        train_idx, _ = _split(len(rows), client.app.state.runtime.settings.holdout_fraction, g)
        for i in train_idx:
            rows[i].target = 1.0 - rows[i].target
    body = client.post("/retrain", headers=ADMIN).json()
    assert body["status"] == "rejected" and not body["promoted"]
    assert body["reason"].startswith("not better: accuracy")
    assert body["metrics"]["accuracy"] < body["champion_metrics"]["accuracy"]
    assert body["champion_version"] == "1" and body["model_version"] == "2"
    assert client.get("/health").json()["champion_version"] == "1"
    assert client.post("/predict", json={"features": [1, 0]}).json()["model_version"] == "1"
    assert _events(client)[-2:] == [("retrain", "2"), ("reject", "2")]


def test_force_promotes_and_margin_applies(make_client):
    client = make_client(promotion_margin=1.0)  # any challenger is within a margin of 1.0
    train(client, seed=1)
    second = train(client, seed=2)
    assert second["status"] == "promoted" and second["champion_metrics"] is not None
    third = train(client, seed=3, force=True)
    assert third["status"] == "promoted"
    assert client.get("/models").json()["champion_version"] == "3"


def test_retrain_a_chosen_dataset(client):
    first = client.post("/generate", json={"samples": 300, "seed": 1}, headers=ADMIN).json()
    client.post("/generate", json={"samples": 500, "seed": 2}, headers=ADMIN)
    r = client.post("/retrain", json={"generation_id": first["generation_id"]}, headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["generation_id"] == first["generation_id"]
    assert r.json()["training_samples"] == 240


def test_retrain_without_data_is_409(client):
    r = client.post("/retrain", headers=ADMIN)
    assert r.status_code == 409
    assert "POST /generate" in r.json()["detail"]


def test_retrain_unknown_dataset_is_404(client):
    r = client.post("/retrain", json={"generation_id": 999}, headers=ADMIN)
    assert r.status_code == 404 and "999" in r.json()["detail"]


def test_single_class_dataset_is_422_and_keeps_the_champion(client):
    train(client)
    g = client.post("/generate", json={"samples": 200, "seed": 4}, headers=ADMIN).json()
    with session_scope(client.app.state.runtime.engine) as s:
        for row in s.scalars(
            select(DatasetSample).where(DatasetSample.generation_id == g["generation_id"])
        ):
            row.target = 1.0
    r = client.post("/retrain", headers=ADMIN)
    # UntrainableDataset, an InvalidInput: 422 with the family's reason.
    assert r.status_code == 422 and "single class" in r.json()["detail"]
    assert client.get("/health").json()["champion_version"] == "1"
    assert _events(client)[-1] == ("failed", None)


def test_retrain_needs_the_key(client):
    assert client.post("/retrain").status_code == 401
    assert client.post("/retrain", headers={"X-API-Key": "nope"}).status_code == 403


def test_delay_retrain_reports_regression_metrics(make_client):
    client = make_client(family="delay")
    body = train(client, samples=2000)
    assert set(body["metrics"]) == {"mae", "rmse", "r2", "accuracy"}
    assert body["metrics"]["r2"] > 0.65 and body["metrics"]["mae"] < 3
