"""The challenger arm on the real app: a gated version goes live (canary or shadow) instead of
becoming champion, requests are routed to it stickily, every log row says which arm and
version answered, and a challenger that fails never reaches a client."""

from __future__ import annotations

import dataclasses
import time

import pytest
from sqlalchemy import select

from ia_continu.challenge import arms
from ia_continu.learn import registry
from ia_continu.serve.bucketing import in_canary, in_challenger_sample
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ChallengerArm, ModelEvent, PredictionLog
from ia_continu.vocab import Arm, ArmMode, ArmStatus, ModelEventKind
from tests.conftest import ADMIN, train

ROWS = [[0.3, -0.2], [1.0, 0.5], [-0.4, 0.9], [0.1, 0.1]] * 50  # 200 rows
IDS = [f"req-{i}" for i in range(len(ROWS))]


def _wait_for(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _live(client):
    """The challenger this process serves, once its poller has loaded it."""
    return _wait_for(lambda: client.app.state.runtime.holder.challenger)


def _logged(client) -> list[PredictionLog]:
    runtime = client.app.state.runtime
    assert runtime.writer.flush(timeout=60)
    with session_scope(runtime.engine) as s:
        return list(s.scalars(select(PredictionLog).order_by(PredictionLog.id)))


def _challenged(make_client, **policy):
    client = make_client(**policy)
    first = train(client)
    second = train(client, seed=2, force=False)
    assert second["status"] == "challenger", second
    assert second["champion_version"] == first["model_version"]  # not champion yet
    return client, first["model_version"], second["model_version"]


def test_canary_answers_its_sticky_share_and_the_log_says_who(make_client):
    client, champion, challenger = _challenged(
        make_client, challenger_policy="canary", canary_steps=[50, 100]
    )
    live = _live(client)
    assert (live.model.version, live.arm.mode, live.arm.percentage) == (
        challenger,
        ArmMode.canary,
        50.0,
    )
    r = client.post("/predict/batch", json={"features": ROWS, "request_ids": IDS})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = [challenger if in_canary(i, 50) else champion for i in IDS]
    assert body["model_versions"] == expected
    assert body["model_version"] == champion
    assert 0 < expected.count(challenger) < len(IDS)
    # Sticky: the same ids get the same versions on a one-row call too.
    one = client.post("/predict", json={"features": ROWS[0], "request_id": IDS[0]}).json()
    assert one["model_version"] == expected[0]

    rows = [r for r in _logged(client) if r.request_id in IDS][: len(IDS)]
    assert [r.model_version for r in rows] == expected
    assert [r.arm for r in rows] == [
        Arm.challenger if v == challenger else Arm.champion for v in expected
    ]
    assert {r.challenger_version for r in rows} == {challenger}
    assert all(r.challenger_prediction is None for r in rows)  # a canary does not shadow


def test_shadow_scores_beside_the_champion_without_answering(make_client):
    client, champion, _challenger = _challenged(
        make_client, challenger_policy="shadow", challenger_shadow_rate=0.5
    )
    assert _live(client).arm.mode == ArmMode.shadow
    r = client.post("/predict/batch", json={"features": ROWS, "request_ids": IDS})
    assert r.status_code == 200 and "model_versions" not in r.json()
    rows = [r for r in _logged(client) if r.request_id in IDS]
    assert {r.model_version for r in rows} == {champion}
    assert {r.arm for r in rows} == {Arm.champion}
    shadowed = [r.challenger_prediction is not None for r in rows]
    assert shadowed == [in_challenger_sample(i, 0.5) for i in IDS]
    assert 0 < sum(shadowed) < len(rows)


def test_a_failing_challenger_is_answered_for_by_the_champion(make_client):
    client, champion, _challenger = _challenged(
        make_client, challenger_policy="canary", canary_steps=[100]
    )
    holder = client.app.state.runtime.holder
    live = _live(client)

    def broken(X):
        raise RuntimeError("challenger exploded")

    holder.challenger = dataclasses.replace(
        live, model=dataclasses.replace(live.model, score=broken)
    )
    r = client.post("/predict/batch", json={"features": ROWS, "request_ids": IDS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["served_by"]) == {"ml"} and "model_versions" not in body
    rows = [r for r in _logged(client) if r.request_id in IDS]
    # Every row was the challenger's to answer (100 %); the champion answered them all, and
    # the log keeps that the challenger failed them (arm challenger, version the champion's).
    assert {(r.arm, r.model_version) for r in rows} == {(Arm.challenger, champion)}


def test_steps_audited_to_champion_and_replicas_follow(make_client):
    client, _champion, challenger = _challenged(
        make_client, challenger_policy="shadow-then-canary", canary_steps=[10, 100]
    )
    runtime = client.app.state.runtime
    settings, engine = runtime.settings, runtime.engine
    outcomes = []
    for _ in range(3):  # shadow -> canary 10 % -> canary 100 % -> champion
        with registry.registry_session(engine, settings) as s:
            arm = arms.active(s, settings.family)
            assert arm is not None
            outcomes.append(arms.advance(s, settings, arm, "better live", {"p_value": 0.01}))
    assert outcomes == ["step", "step", "promoted"]
    with session_scope(engine) as s:
        assert registry.champion_version(s, settings.family) == challenger
        arm = s.scalars(select(ChallengerArm)).one()
        assert arm.status == ArmStatus.promoted and arm.ended_at is not None
        events = list(s.scalars(select(ModelEvent.event).order_by(ModelEvent.id)))
    assert events[-5:] == [
        ModelEventKind.challenger_started,
        ModelEventKind.challenger_advanced,
        ModelEventKind.challenger_advanced,
        ModelEventKind.promote,
        ModelEventKind.challenger_promoted,
    ]
    # The poller serves the promoted challenger as champion and drops the arm.
    _wait_for(lambda: runtime.holder.current.version == challenger or None)
    _wait_for(lambda: runtime.holder.challenger is None or None)
    r = client.post("/predict", json={"features": ROWS[0], "request_id": "after"})
    assert r.json()["model_version"] == challenger


@pytest.mark.parametrize("by_hand", ["promote_other", "promote_challenger", "rollback"])
def test_a_champion_changed_by_hand_ends_the_arm(make_client, by_hand):
    client, _champion, challenger = _challenged(make_client, challenger_policy="canary")
    if by_hand == "promote_other":
        third = train(client, seed=3, force=True)["model_version"]  # forced: champion at once
        expected = ArmStatus.aborted
        assert third != challenger
    elif by_hand == "promote_challenger":
        r = client.post(f"/models/{challenger}/promote", json={"reason": "ok"}, headers=ADMIN)
        assert r.status_code == 200, r.text
        expected = ArmStatus.promoted
    else:
        client.post(f"/models/{challenger}/promote", json={}, headers=ADMIN)  # ends the arm
        arm_id = _arm(client).id
        assert client.post("/models/rollback", json={}, headers=ADMIN).status_code == 200
        assert _arm(client).id == arm_id  # no new arm
        return
    arm = _arm(client)
    assert arm.status == expected and arm.ended_at is not None


def _arm(client) -> ChallengerArm:
    runtime = client.app.state.runtime
    with session_scope(runtime.engine) as s:
        return s.scalars(select(ChallengerArm).order_by(ChallengerArm.id.desc())).first()


def test_a_new_challenger_replaces_the_live_one(make_client):
    client, _champion, challenger = _challenged(
        make_client,
        challenger_policy="canary",
        promotion_margin=0.5,  # any version passes
    )
    third = train(client, seed=3)
    assert third["status"] == "challenger"
    runtime = client.app.state.runtime
    with session_scope(runtime.engine) as s:
        rows = list(s.scalars(select(ChallengerArm).order_by(ChallengerArm.id)))
    assert [(r.version, r.status) for r in rows] == [
        (challenger, ArmStatus.aborted),
        (third["model_version"], ArmStatus.active),
    ]
