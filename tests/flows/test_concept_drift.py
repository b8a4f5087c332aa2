"""Concept drift on the simulator: the inputs stay as they were, the outcomes change.

The champion is trained on the clean world. Then, for a day, requests come from the same
input distribution but the world answers them differently (the second feature's effect has
flipped sign): Evidently finds no input drift, yet the champion is wrong in every window. The
monitor announces the sustained degradation once, and the retrain flow retrains on that
day's labelled traffic and promotes a model of the new world.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select, update

from flows.backfill_actuals import backfill_actuals
from flows.detect_drift import detect_drift
from flows.monitor_performance import monitor_performance
from flows.retrain import retrain_flow
from ia_continu.families import get_family
from ia_continu.families.classification import TRUE_BIAS, TRUE_WEIGHTS
from ia_continu.sim import draw_traffic, store_outcomes
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ModelEvent, PredictionLog, utcnow
from ia_continu.vocab import LoopEvent, ModelEventKind
from tests.conftest import train
from tests.flows.conftest import flush, stored_event
from tests.flows.test_deployments import _retrain_runs
from tests.flows.test_loop import _artifact, events

# The changed world: same inputs, the second feature now pushes the other way.
NEW_WEIGHTS = TRUE_WEIGHTS * np.array([1.0, -1.0])


def send_day(settings, engine, client, *, per_window: int, concept_changed: bool, seed: int):
    """One window's worth of traffic per degradation window, placed in its window (the
    rows' time set as if the day had passed), outcomes known."""
    family = get_family(settings.family, settings)
    width = timedelta(hours=settings.degradation_window_hours)
    k = settings.degradation_windows
    for i in range(k):
        traffic = draw_traffic(family, per_window, seed=seed + i)
        X = np.array(traffic.features)
        noise = np.random.default_rng(seed + 100 + i).normal(0.0, 0.6, size=len(X))
        weights = NEW_WEIGHTS if concept_changed else TRUE_WEIGHTS
        actuals = (X @ weights + TRUE_BIAS + noise > 0).astype(float).tolist()
        with session_scope(engine) as session:
            store_outcomes(session, settings, traffic.request_ids, actuals, delay_seconds=0)
        r = client.post(
            "/predict/batch",
            json={"features": traffic.features, "request_ids": traffic.request_ids},
        )
        assert r.status_code == 200, r.text
        flush(client)
        # The middle of window i (oldest first; the last window ends now).
        at = utcnow() - (k - i) * width + width / 2
        with session_scope(engine) as session:
            session.execute(
                update(PredictionLog)
                .where(PredictionLog.request_id.in_(traffic.request_ids))
                .values(created_at=at)
            )
    backfill_actuals()


@pytest.mark.slow
def test_degradation_without_input_drift_retrains(
    flow_settings, client, engine, receiver, prefect_server
):
    train(client, samples=2000)
    send_day(flow_settings, engine, client, per_window=300, concept_changed=True, seed=40)

    # The inputs did not move: no input drift, and the model's answers did not move either.
    drift = detect_drift()
    assert drift["status"] == "checked" and drift["dataset_drift"] is False
    assert drift["prediction"]["drifted"] is False
    assert drift["event_id"] is None

    perf = monitor_performance()
    assert "accuracy_rate" in perf["crossed"]
    assert perf["sustained"] and len(perf["sustained"]) == flow_settings.degradation_windows
    assert all(c.startswith("accuracy 0.") for c in perf["sustained"])
    event = stored_event(
        prefect_server, LoopEvent.degradation_sustained, perf["sustained_event_id"]
    )
    assert event["payload"]["model_version"] == "1" and event["payload"]["windows"] == 3
    assert event["resource"]["ia-continu.family"] == "classification"
    table = asyncio.run(_artifact("ia-continu-degradation"))
    assert table is not None and table.type == "table"
    assert table.data.count('"realised"') == 3 and "accuracy 0." in table.data
    # The next hourly run sees the same incident: no second event (no retrain every hour).
    again = monitor_performance()
    assert again["sustained"] and again["sustained_event_id"] is None

    # What the trigger starts.
    out = retrain_flow(reason="sustained degradation event")
    decision = out["decision"]
    assert decision["retrain"] is True and decision["sustained"] is True
    assert decision["drift"] is False
    assert decision["reason"].startswith(
        "sustained degradation over 3 windows without input drift: accuracy 0."
    )
    res = out["result"]
    assert res["status"] == "promoted" and res["champion_version"] == "2"
    assert res["training_samples"] >= 600  # the day's labelled traffic, the new world
    assert events(engine)[-2:] == [(ModelEventKind.retrain, "2"), (ModelEventKind.promote, "2")]
    with session_scope(engine) as session:
        audit = session.scalars(
            select(ModelEvent).where(
                ModelEvent.event == ModelEventKind.retrain, ModelEvent.version == "2"
            )
        ).one()
        assert "sustained degradation over 3 windows" in audit.reason

    # The new champion has answered nothing yet: nothing sustained about it.
    after = monitor_performance()
    assert after["sustained"] is None and after["sustained_event_id"] is None


@pytest.mark.slow
def test_a_good_day_does_not_retrain(flow_settings, client, engine, receiver, prefect_server):
    train(client, samples=2000)
    send_day(flow_settings, engine, client, per_window=200, concept_changed=False, seed=60)
    perf = monitor_performance()
    assert perf["sustained"] is None and perf["sustained_event_id"] is None
    out = retrain_flow(reason="weekly schedule")
    assert out["decision"]["retrain"] is False and out["decision"]["sustained"] is False
    assert [w["source"] for w in out["decision"]["checks"]["windows"]] == ["realised"] * 3
    assert events(engine)[-1] == (ModelEventKind.retrain_skipped, None)


def _trigger_exists(api_url: str, name: str) -> bool:
    r = httpx.post(f"{api_url}/automations/filter", json={}, timeout=10)
    return r.status_code == 200 and any(a["name"] == name for a in r.json())


@pytest.mark.slow
def test_the_sustained_event_starts_the_served_retrain(
    flow_settings, client, engine, receiver, prefect_server
):
    """The live path: the retrain deployment served by another process, as `ia-continu run`
    does; monitor_performance's event starts it through `retrain-on-sustained-degradation`."""
    train(client, samples=2000)
    send_day(flow_settings, engine, client, per_window=300, concept_changed=True, seed=40)
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    server = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve", "retrain"],
        cwd=Path(__file__).parents[2],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not _trigger_exists(prefect_server, "retrain-on-sustained-degradation"):
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "sustained-degradation trigger never registered"
            time.sleep(1)

        since = datetime.now(UTC)
        assert monitor_performance()["sustained_event_id"]

        deadline = time.monotonic() + 150
        runs: list = []
        while not any(r.state and r.state.is_final() for r in runs):
            assert server.poll() is None, server.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"no retrain run finished: {runs}"
            time.sleep(2)
            runs = asyncio.run(_retrain_runs(prefect_server, since))
        (run,) = runs
        assert run.state.is_completed(), run.state
        assert run.parameters["model"] == "classification"
        assert run.parameters["reason"].startswith("sustained degradation event: ['accuracy 0.")
        assert run.parameters["reason"].endswith("over 3 windows of 8.0 h on model 1")
        assert events(engine)[-2:] == [
            (ModelEventKind.retrain, "2"),
            (ModelEventKind.promote, "2"),
        ]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
