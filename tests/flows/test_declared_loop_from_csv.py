"""The whole loop for a declared model with numeric and categorical features, from a CSV, on
SQLite and PostgreSQL: import, retrain, predict by name, outcomes, metrics, drift on the
categorical feature, and the retrain its event starts."""

from __future__ import annotations

import numpy as np

from flows.detect_drift import detect_drift
from flows.monitor_performance import monitor_performance
from flows.retrain import retrain_flow
from ia_continu.catalog import catalog
from ia_continu.declared.data import simulate
from ia_continu.vocab import LoopEvent, ModelEventKind
from tests.conftest import ADMIN
from tests.conftest import db_url as both_backends
from tests.flows.conftest import stored_event
from tests.flows.test_model_events import MODEL, drifted_traffic, model_events

# This module runs on both databases (the flows' conftest pins SQLite for the others).
db_url = both_backends


def test_csv_import_to_event_driven_retrain(
    flow_settings, client, engine, receiver, prefect_server, tmp_path
):
    declaration = catalog().declaration(MODEL)
    frame, y = simulate(declaration, 1500, rng=np.random.default_rng(11))
    frame[declaration.target.name] = y
    csv = tmp_path / "counts.csv"
    frame.to_csv(csv, index=False)
    assert set(frame["weather"]) <= {"clear", "cloudy", "rain", "snow"}  # text categories

    with csv.open("rb") as body:
        r = client.post(
            f"/models/{MODEL}/datasets",
            params={"name": "counts.csv"},
            content=body.read(),
            headers={**ADMIN, "Content-Type": "text/csv"},
        )
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 1500
    r = client.post(f"/models/{MODEL}/retrain", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["champion_version"] == "1" and r.json()["training_samples"] == 1200

    # Predict by name (categories as text), then the outcomes: far above the answers.
    drifted_traffic(client, 400)
    metrics = client.get(f"/models/{MODEL}/monitoring/metrics").json()
    assert metrics["family"] == MODEL and metrics["labeled_count"] == 400
    assert metrics["mae"] > 100 and metrics["accuracy_rate"] == 0.0

    perf = monitor_performance(model=MODEL)
    assert perf["crossed"]
    result = detect_drift(model=MODEL)
    assert result["dataset_drift"] is True and "weather" in result["drifted_features"]
    event = stored_event(prefect_server, LoopEvent.drift_detected, result["event_id"])
    assert event["resource"]["ia-continu.family"] == MODEL

    # What the drift trigger starts (prefect.yaml passes the event's model to the flow).
    out = retrain_flow(reason="drift event", model=event["resource"]["ia-continu.family"])
    assert out["decision"]["retrain"] is True
    assert out["result"]["status"] in ("promoted", "rejected")
    assert model_events(engine, MODEL)[-1] in (ModelEventKind.promote, ModelEventKind.reject)
    assert model_events(engine, "classification") == []
