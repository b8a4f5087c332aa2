"""The monitoring loop on real data: monitor_performance, detect_drift, retrain.

The synthetic world is driven through the real app: a champion trained on clean data, then
traffic (clean or drifted) whose outcomes are backfilled by the real flow.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from flows.backfill_actuals import backfill_actuals
from flows.common import MODEL_RESOURCE_ID
from flows.detect_drift import detect_drift
from flows.monitor_performance import monitor_performance
from flows.retrain import retrain_flow
from ia_continu.sim import simulate_traffic
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import DriftReport, ModelEvent
from ia_continu.vocab import LoopEvent, ModelEventKind
from tests.conftest import train
from tests.flows.conftest import flush, stored_event


def world(settings, engine, client, *, clean: int, drifted: int = 0, drift: float = 3.0):
    """Champion on clean data, then traffic whose outcomes are all known, then backfill."""
    train(client, samples=2000)
    simulate_traffic(settings, engine, client, clean, seed=11, delay_seconds=0)
    if drifted:
        simulate_traffic(settings, engine, client, drifted, drift=drift, seed=12, delay_seconds=0)
    flush(client)
    backfill_actuals()


def events(engine) -> list[tuple[str, str | None]]:
    with session_scope(engine) as session:
        return [
            (e.event, e.version)
            for e in session.scalars(select(ModelEvent).order_by(ModelEvent.id))
        ]


async def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as c:
        found = await c.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return found[0] if found else None


def test_importing_drift_does_not_import_evidently():
    code = "import sys, ia_continu.watch.drift, api.main; print('evidently' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "False"


def test_detect_drift_skips_without_champion(flow_settings, engine):
    result = detect_drift()
    assert result["status"] == "skipped" and "no champion" in result["reason"]
    assert result["event_id"] is None


@pytest.mark.slow
def test_clean_traffic_no_drift_no_alert(flow_settings, client, engine, receiver, prefect_server):
    world(flow_settings, engine, client, clean=600)
    perf = monitor_performance()
    assert perf["crossed"] == [] and perf["event_id"] is None
    assert perf["metrics"]["24h"]["count"] == 600

    result = detect_drift()
    assert result["status"] == "checked"
    assert result["dataset_drift"] is False and result["event_id"] is None
    # Clean traffic: the champion answers as it did on its training data, outcomes as then.
    assert result["prediction"]["drifted"] is False and result["target"]["drifted"] is False
    assert result["prediction"]["rows"] == result["target"]["rows"] == 600
    assert receiver.embeds() == []

    # The weekly run without drift decides not to retrain, and says so in the audit.
    out = retrain_flow(reason="weekly schedule")
    assert out["decision"]["retrain"] is False and out["result"] is None
    assert events(engine)[-1] == (ModelEventKind.retrain_skipped, None)


@pytest.mark.slow
def test_drift_detected_event_then_retrain_promotes(
    flow_settings, client, engine, receiver, prefect_server
):
    world(flow_settings, engine, client, clean=200, drifted=1500)

    perf = monitor_performance()
    assert "accuracy_rate" in perf["crossed"] and perf["event_id"] and perf["alerted"]
    # The next hourly run finds the same incident: an event again, but no second alert.
    again = monitor_performance()
    assert again["crossed"] == perf["crossed"] and again["event_id"] and not again["alerted"]
    table = asyncio.run(_artifact("ia-continu-performance"))
    assert table is not None and table.type == "table" and "accuracy_rate" in table.data

    result = detect_drift()
    assert result["dataset_drift"] is True and result["drifted_features"] == ["feature1"]
    assert result["prediction"]["drifted"] is True and result["prediction"]["rows"] == 1700
    assert Path(result["report_path"]).is_file() and result["mlflow_run_id"]
    with session_scope(engine) as session:
        row = session.scalars(select(DriftReport)).one()
        assert row.dataset_drift and row.model_version == result["model_version"] == "1"

    # The event reached the Prefect server, with what the trigger and the retrain need.
    event = stored_event(prefect_server, LoopEvent.drift_detected, result["event_id"])
    assert event["payload"]["features"] == ["feature1"] and event["payload"]["share"] >= 0.5
    resource_id = MODEL_RESOURCE_ID.format(family="classification")
    assert event["resource"]["prefect.resource.id"] == resource_id
    assert stored_event(prefect_server, LoopEvent.performance_degraded, perf["event_id"])

    # What the trigger would start: the retrain flow with the event's reason.
    out = retrain_flow(reason=f"drift event: features {event['payload']['features']}")
    assert out["decision"]["retrain"] is True and "accuracy" in out["decision"]["reason"]
    res = out["result"]
    assert res["status"] == "promoted" and res["champion_version"] == "2"
    assert res["training_samples"] > 1000  # trained on the labelled production traffic
    assert events(engine)[-2:] == [(ModelEventKind.retrain, "2"), (ModelEventKind.promote, "2")]

    titles = [e["title"] for e in receiver.embeds()]
    assert titles == [
        "Model performance below thresholds (classification)",
        "Data drift detected (classification)",
        # The shifted sensor moved the model's answers too: reported apart from the inputs.
        "Prediction drift detected (classification)",
        "Retrain: version 2 promoted (classification)",
    ]


@pytest.mark.slow
def test_retrain_gate_rejects_a_worse_challenger(flow_settings, client, engine, receiver):
    # No labelled traffic to learn from: the flow falls back to the latest dataset, a small
    # one (seed 27: its 80 training rows give a model that loses 0.80 vs 0.90 on the shared
    # holdout), and the gate must keep the champion.
    train(client, samples=5000, seed=1)
    r = client.post(
        "/generate",
        json={"samples": 100, "seed": 27, "drift": False},
        headers={"X-API-Key": flow_settings.effective_api_key},
    )
    assert r.status_code == 200
    out = retrain_flow(reason="operator", force_decision=True, min_labelled_rows=10**9)
    assert out["decision"]["forced"] is True
    res = out["result"]
    assert res["status"] == "rejected" and res["champion_version"] == "1"
    assert events(engine)[-2:] == [(ModelEventKind.retrain, "2"), (ModelEventKind.reject, "2")]
    assert receiver.embeds()[-1]["title"] == "Retrain: version 2 rejected (classification)"
