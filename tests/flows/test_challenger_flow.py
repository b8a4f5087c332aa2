"""The live challenger end to end on the simulator: the real app answers the traffic (its
canary share routed to the challenger), the real backfill flow brings the outcomes, and the
real analyze_challenger flow judges and moves the arm under a Prefect test server.

The world moves between training and serving: ``drift`` shifts what the sensors report while
the outcome follows the true world, so a model trained on one world does worse on the other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from flows.analyze_challenger import analyze_challenger, analyze_every_model
from flows.backfill_actuals import backfill_actuals
from ia_continu.learn import registry
from ia_continu.sim import simulate_traffic
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ChallengerArm, ModelEvent, PredictionLog
from ia_continu.vocab import Arm, ArmStatus, LoopEvent, ModelEventKind
from tests.conftest import train
from tests.flows.conftest import flush
from tests.flows.test_loop import _artifact

DRIFT = 3.0
POLICY = {
    "challenger_policy": "canary",
    "canary_steps": [50, 100],
    "challenger_min_labelled": 100,
    "challenger_min_step_minutes": 0,
}


def _env(monkeypatch, policy: dict) -> None:
    """The flow builds its settings from the environment, as a worker's process does."""
    import json

    for key, value in policy.items():
        text = json.dumps(value) if isinstance(value, list) else str(value).lower()
        monkeypatch.setenv(f"IA_CONTINU_{key.upper()}", text)


def _wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _challenged(make_client, monkeypatch, *, trained_on: float, **policy):
    """A champion trained on the clean world, a challenger on ``trained_on`` (it wins the
    offline gate on its own world's holdout), live as the policy says."""
    policy = {**POLICY, **policy}
    _env(monkeypatch, policy)
    client = make_client(**policy)
    champion = train(client, samples=2000)["model_version"]
    second = train(client, samples=2000, seed=2, drift=trained_on)
    assert second["status"] == "challenger", second
    return client, champion, second["model_version"]


def _serving(client, percentage: float | None):
    """Wait until this process serves the arm at ``percentage`` (None: no arm)."""
    holder = client.app.state.runtime.holder

    def ready():
        live = holder.challenger
        if percentage is None:
            return True if live is None else None
        return True if live is not None and live.arm.percentage == percentage else None

    _wait_for(ready)


def _traffic(settings, engine, client, n: int, *, drift: float, seed: int, limit: int = 50_000):
    simulate_traffic(settings, engine, client, n, drift=drift, seed=seed, delay_seconds=0)
    flush(client)
    backfill_actuals(limit=limit)


def _events(engine) -> list[str]:
    with session_scope(engine) as s:
        return list(s.scalars(select(ModelEvent.event).order_by(ModelEvent.id)))


@pytest.mark.slow
def test_a_better_challenger_ramps_to_champion_with_nobody_s_help(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    # Live traffic comes from the drifted world; the challenger learnt it, the champion not.
    client, champion, challenger = _challenged(make_client, monkeypatch, trained_on=DRIFT)
    outcomes = []
    for step, percentage in enumerate([50.0, 100.0]):
        _serving(client, percentage)
        _traffic(flow_settings, engine, client, 600, drift=DRIFT, seed=20 + step)
        result = analyze_challenger()
        outcomes.append(result["outcome"])
        arm = result["arm"]
        assert arm["verdict"] == "advance", arm["reason"]
        assert arm["challenger"]["metric"] > arm["champion"]["metric"]
        assert arm["p_sequential"] < 0.05 and arm["test"] == "two-proportion z-test"
    assert outcomes == ["step", "promoted"]
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == challenger
        (arm_row,) = s.scalars(select(ChallengerArm)).all()
        assert arm_row.status == ArmStatus.promoted
        assert arm_row.last_verdict["verdict"] == "advance"
        assert arm_row.last_verdict["p_not_worse"] < 0.05
    assert _events(engine)[-4:] == [
        ModelEventKind.challenger_started,
        ModelEventKind.challenger_advanced,  # 50 % -> 100 %
        ModelEventKind.promote,
        ModelEventKind.challenger_promoted,
    ]
    report = asyncio.run(_artifact("ia-continu-challenger"))
    assert report is not None and report.type == "markdown"
    assert f"# Challenger {challenger} against champion {champion}" in report.data
    assert "**advance** (promoted)" in report.data and "two-proportion z-test" in report.data
    assert "sequential p = " in report.data
    titles = [e["title"] for e in receiver.embeds()]
    assert any(t.startswith("Challenger advanced") for t in titles)
    assert any(t.startswith("Challenger promoted to champion") for t in titles)
    # Every replica follows: this one now answers with the promoted version, no arm.
    _serving(client, None)
    r = client.post("/predict", json={"features": [0.0, 0.0], "request_id": "after"})
    assert r.json()["model_version"] == challenger


@pytest.mark.slow
def test_an_offline_winner_that_loses_live_is_aborted_and_the_champion_keeps_serving(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    # Trained on the drifted world (it wins offline there), but live traffic is clean.
    client, champion, _challenger = _challenged(make_client, monkeypatch, trained_on=DRIFT)
    _serving(client, 50.0)
    _traffic(flow_settings, engine, client, 600, drift=0.0, seed=30)
    result = analyze_challenger()
    assert result["outcome"] == "aborted", result["arm"]["reason"]
    assert result["arm"]["reason"].startswith("significantly worse")
    assert result["arm"]["challenger"]["metric"] < result["arm"]["champion"]["metric"]
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == champion
        assert s.scalars(select(ChallengerArm.status)).one() == ArmStatus.aborted
        # The champion never stopped serving: it answered its share of every call.
        versions = set(s.scalars(select(PredictionLog.model_version)))
    assert champion in versions
    assert _events(engine)[-1] == ModelEventKind.challenger_aborted
    assert any(e["title"].startswith("Challenger aborted") for e in receiver.embeds())
    _serving(client, None)
    r = client.post("/predict", json={"features": [0.0, 0.0], "request_id": "after-abort"})
    assert r.json()["model_version"] == champion
    # Nothing left to judge (the scheduled fan-out, over this model).
    assert analyze_every_model(models=["classification"])["classification"]["arm"] is None


@pytest.mark.slow
def test_sparse_outcomes_hold_and_never_promote(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    client, champion, _challenger = _challenged(make_client, monkeypatch, trained_on=DRIFT)
    _serving(client, 50.0)
    for seed in (40, 41):
        # Many requests, few outcomes: the challenger looks far better, but on 30 rows.
        _traffic(flow_settings, engine, client, 400, drift=DRIFT, seed=seed, limit=30)
        result = analyze_challenger()
        assert result["outcome"] == "held"
        assert result["arm"]["reason"].startswith("too few outcomes")
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == champion
        arm = s.scalars(select(ChallengerArm)).one()
        assert (arm.status, arm.step) == (ArmStatus.active, 0)
        assert arm.last_verdict["hold"] == "too_few_outcomes"
    # The same hold again within the hour is not audited a second time.
    assert _events(engine)[-2:] == [
        ModelEventKind.challenger_started,
        ModelEventKind.challenger_held,
    ]


@pytest.mark.slow
def test_a_promoted_champion_that_degrades_is_rolled_back_once(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    policy = {"challenger_min_labelled": 100}  # policy direct: the gate promotes at once
    _env(monkeypatch, policy)
    client = make_client(**policy)
    first = train(client, samples=2000)["model_version"]
    _traffic(flow_settings, engine, client, 400, drift=0.0, seed=50)
    # A version trained on the drifted world becomes champion; the world stays clean.
    second = train(client, samples=2000, seed=2, drift=DRIFT, force=True)["model_version"]
    _wait_for(lambda: client.app.state.runtime.holder.current.version == second or None)
    _traffic(flow_settings, engine, client, 400, drift=0.0, seed=51)
    result = analyze_challenger()
    watched = result["watch"]
    assert watched["verdict"] == "rollback" and watched["rolled_back"], watched
    assert watched["new_metric"] < watched["previous_metric"]
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == first
        audit = s.scalars(
            select(ModelEvent).where(ModelEvent.event == ModelEventKind.auto_rollback)
        ).one()
        assert (audit.version, audit.previous_version) == (first, second)
        assert audit.metrics["p_worse"] < 0.05
    assert any(e["title"].startswith("Champion rolled back") for e in receiver.embeds())
    # Never twice for the same promotion.
    assert analyze_challenger()["watch"] is None
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == first


@pytest.mark.slow
def test_an_approval_not_given_in_time_aborts(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    client, champion, _challenger = _challenged(
        make_client,
        monkeypatch,
        trained_on=DRIFT,
        canary_steps=[50],  # advancing past 50 % makes it champion
        challenger_approval=True,
        challenger_approval_timeout_minutes=0.05,  # 3 s
    )
    _serving(client, 50.0)
    _traffic(flow_settings, engine, client, 600, drift=DRIFT, seed=60)
    result = analyze_challenger()
    assert result["outcome"] == "aborted"
    assert result["reason"] == "approval timed out after 0.05 min"
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == champion
    assert _events(engine)[-2:] == [
        ModelEventKind.challenger_held,  # awaiting approval
        ModelEventKind.challenger_aborted,
    ]
    assert any(e["title"].startswith("Challenger awaits approval") for e in receiver.embeds())


@pytest.mark.slow
@pytest.mark.parametrize("approve", [True, False], ids=["approved", "refused"])
def test_an_approval_answered_in_the_ui_promotes_or_aborts(
    flow_settings, make_client, engine, receiver, monkeypatch, approve
):
    client, champion, challenger = _challenged(
        make_client,
        monkeypatch,
        trained_on=DRIFT,
        canary_steps=[50],  # advancing past 50 % makes it champion
        challenger_approval=True,
        challenger_approval_timeout_minutes=2,
    )
    _serving(client, 50.0)
    _traffic(flow_settings, engine, client, 600, drift=DRIFT, seed=70)
    answered: list[str] = []

    since = datetime.now(UTC)

    def answer() -> None:
        # What the Prefect UI does: find the paused run, resume it with the input.
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.flow_runs import resume_flow_run

        deadline = time.monotonic() + 90
        with get_client(sync_client=True) as c:
            while time.monotonic() < deadline:
                paused = [
                    run
                    for run in c.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(
                                type=FlowRunFilterStateType(any_=[StateType.PAUSED])
                            )
                        )
                    )
                    if run.created is not None and run.created >= since  # this test's
                ]
                if paused:
                    # A scheduled run meanwhile does not ask a second time.
                    answered.append(analyze_challenger()["outcome"])
                    resume_flow_run(paused[0].id, run_input={"approve": approve, "comment": "ok"})
                    return
                time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    result = analyze_challenger()
    thread.join(timeout=10)
    assert answered == ["awaiting approval"], "the run never paused"
    if approve:
        assert result["outcome"] == "promoted", result["reason"]
        assert result["reason"].startswith("approved: ok")
    else:
        assert (result["outcome"], result["reason"]) == ("aborted", "approval refused: ok")
    with session_scope(engine) as s:
        expected = challenger if approve else champion
        assert registry.champion_version(s, flow_settings.family) == expected


def _events_about(api_url: str, name: str, since: datetime, timeout: float = 30.0) -> list[dict]:
    """Events ``name`` about the default model stored by the Prefect server since ``since``
    (they travel over a websocket and are persisted in batches: poll)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        r = httpx.post(
            f"{api_url}/events/filter",
            json={
                "filter": {
                    "event": {"name": [name]},
                    "occurred": {"since": since.isoformat()},
                    "resource": {"id": ["ia-continu.model.classification"]},
                },
                "limit": 50,
            },
            timeout=10,
        )
        r.raise_for_status()
        if found := r.json()["events"]:
            return found
        assert time.monotonic() < deadline, f"no {name} event stored"
        time.sleep(0.5)


@pytest.mark.slow
def test_backfill_announces_the_outcomes_it_wrote(
    flow_settings, make_client, engine, receiver, prefect_server
):
    """The event the analyze-challenger deployment's trigger listens for."""
    client = make_client()
    train(client)
    since = datetime.now(UTC)
    _traffic(flow_settings, engine, client, 120, drift=0.0, seed=80)
    (event,) = _events_about(prefect_server, LoopEvent.outcomes_recorded, since)
    assert event["payload"] == {"updated": 120, "source": "synthetic"}
    assert event["resource"]["ia-continu.family"] == "classification"
    # No outcome written, no event.
    backfill_actuals()
    time.sleep(2)
    assert len(_events_about(prefect_server, LoopEvent.outcomes_recorded, since)) == 1


@pytest.mark.slow
def test_a_failing_challenger_trips_the_error_guardrail_and_discord_down_changes_nothing(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    client, champion, _challenger = _challenged(make_client, monkeypatch, trained_on=DRIFT)
    holder = client.app.state.runtime.holder
    _serving(client, 50.0)
    live = holder.challenger

    def broken(X):
        raise RuntimeError("challenger exploded")

    holder.challenger = dataclasses.replace(
        live, model=dataclasses.replace(live.model, score=broken)
    )
    simulate_traffic(flow_settings, engine, client, 200, drift=DRIFT, seed=90, delay_seconds=0)
    flush(client)
    receiver.answer(500)  # Discord is down: the flow still applies its verdict
    result = analyze_challenger()
    assert result["outcome"] == "aborted"
    assert result["arm"]["guardrail"] == "error_rate"
    assert result["arm"]["challenger"]["error_rate"] == 1.0
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == champion
        # Every challenger row was answered by the champion: no client saw the failure.
        rows = s.scalars(select(PredictionLog).where(PredictionLog.arm == Arm.challenger)).all()
    assert rows and {r.model_version for r in rows} == {champion}


@pytest.mark.slow
def test_a_better_shadow_challenger_is_promoted_on_paired_rows(
    flow_settings, make_client, engine, receiver, monkeypatch
):
    client, _champion, challenger = _challenged(
        make_client, monkeypatch, trained_on=DRIFT, challenger_policy="shadow"
    )
    _wait_for(lambda: client.app.state.runtime.holder.challenger)
    _traffic(flow_settings, engine, client, 500, drift=DRIFT, seed=95)
    result = analyze_challenger()
    arm = result["arm"]
    assert arm["mode"] == "shadow" and arm["test"] == "McNemar exact test"
    assert result["outcome"] == "promoted", arm["reason"]
    # Paired: both arms judged on the same shadowed rows.
    assert arm["challenger"]["labelled"] == arm["champion"]["labelled"] >= 100
    with session_scope(engine) as s:
        assert registry.champion_version(s, flow_settings.family) == challenger


def test_a_database_outage_fails_the_run_and_alerts(flow_settings, receiver, monkeypatch):
    """Nothing listens where the database should be: the run fails (no verdict can be
    applied) and its failure hook alerts, naming the model."""
    from tests.flows.conftest import free_port

    monkeypatch.setenv(
        "IA_CONTINU_DATABASE_URL",
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere?connect_timeout=2",
    )
    state = analyze_challenger(model="classification", return_state=True)
    assert state.is_failed()
    (alert,) = [e for e in receiver.embeds() if e["title"].startswith("Flow analyze_challenger")]
    assert alert["title"] == "Flow analyze_challenger failed (model classification)"
