"""The event-driven loop for a declared model (bike_traffic, categories included): its drift
event is about that model, and the retrain the event starts works on that model only."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from flows.common import MODEL_RESOURCE_ID
from flows.detect_drift import detect_drift
from flows.monitor_performance import monitor_performance
from flows.retrain import retrain_flow
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ModelEvent
from ia_continu.vocab import LoopEvent, ModelEventKind
from tests.conftest import ADMIN
from tests.flows.conftest import stored_event

MODEL = "bike_traffic"


def drifted_traffic(client, n: int) -> None:
    """Night traffic on Sundays in the snow at the park, whose real counts are far above
    the answers: the inputs drifted and the model got worse."""
    rng = np.random.default_rng(5)
    rows = [
        {"hour": int(h), "weekday": int(d), "weather": str(w), "counter": str(c)}
        for h, d, w, c in zip(
            rng.integers(1, 5, n),
            rng.integers(5, 7, n),
            rng.choice(["snow", "rain"], n, p=[0.9, 0.1]),
            rng.choice(["park", "university"], n),
            strict=True,
        )
    ]
    ids = [f"night-{i}" for i in range(n)]
    r = client.post(f"/models/{MODEL}/predict/batch", json={"features": rows, "request_ids": ids})
    assert r.status_code == 200, r.text
    items = [
        {"request_id": rid, "actual": float(p) + 150.0}
        for rid, p in zip(ids, r.json()["predictions"], strict=True)
    ]
    r = client.post(f"/models/{MODEL}/actuals", json={"actuals": items}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["updated"] == n, r.text


def model_events(engine, model: str) -> list[str]:
    with session_scope(engine) as session:
        return list(
            session.scalars(
                select(ModelEvent.event).where(ModelEvent.family == model).order_by(ModelEvent.id)
            )
        )


def test_a_declared_model_s_drift_event_retrains_that_model(
    flow_settings, client, engine, receiver, prefect_server
):
    clean = {"samples": 1500, "seed": 3, "drift": False}
    r = client.post(f"/models/{MODEL}/generate", json=clean, headers=ADMIN)
    assert r.status_code == 200, r.text
    r = client.post(f"/models/{MODEL}/retrain", headers=ADMIN)
    assert r.status_code == 200 and r.json()["champion_version"] == "1", r.text
    drifted_traffic(client, 400)

    perf = monitor_performance(model=MODEL)
    assert perf["crossed"] and perf["event_id"]  # its own thresholds (the declaration's)

    result = detect_drift(model=MODEL)
    assert result["dataset_drift"] is True and "weather" in result["drifted_features"]
    assert result["prediction"]["drifted"] is True
    event = stored_event(prefect_server, LoopEvent.drift_detected, result["event_id"])
    assert event["resource"]["prefect.resource.id"] == MODEL_RESOURCE_ID.format(family=MODEL)
    assert event["resource"]["ia-continu.family"] == MODEL

    # What the trigger starts: the retrain flow for the event's model (prefect.yaml passes
    # event.resource['ia-continu.family'] as `model`; test_deployments renders it).
    out = retrain_flow(
        reason=f"drift event: features {event['payload']['features']}",
        model=event["resource"]["ia-continu.family"],
    )
    assert out["decision"]["retrain"] is True
    assert out["result"]["status"] in ("promoted", "rejected")
    assert out["result"]["training_samples"] > 0
    kinds = model_events(engine, MODEL)
    assert kinds[-2] == ModelEventKind.retrain
    assert kinds[-1] in (ModelEventKind.promote, ModelEventKind.reject)
    assert model_events(engine, "classification") == []  # the default model untouched

    titles = [e["title"] for e in receiver.embeds()]
    assert titles[:3] == [
        f"Model performance below thresholds ({MODEL})",
        f"Data drift detected ({MODEL})",
        # The drifted weather moved the model's answers too (reported apart from the inputs).
        f"Prediction drift detected ({MODEL})",
    ]
    assert titles[3].startswith("Retrain: version 2 ") and titles[3].endswith(f"({MODEL})")
