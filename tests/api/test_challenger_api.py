"""The challenger arm's HTTP surface on the real app (SQLite and PostgreSQL): read the arm
with its policy, steps and comparison; start, abort and advance it by hand (admin key, clear
4xx), every change audited as an operator's; the canary share on /metrics."""

from __future__ import annotations

import time

from tests.conftest import ADMIN, train

CANARY = {"challenger_policy": "canary", "canary_steps": [50, 100]}


def _challenged(make_client, **policy):
    client = make_client(**(policy or CANARY))
    first = train(client)["model_version"]
    second = train(client, seed=2)
    assert second["status"] == "challenger", second
    return client, first, second["model_version"]


def _status(client, path: str = "/challenger") -> dict:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return r.json()


def _wait_served(client, version: str | None, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(client)
        if status["served_challenger"] == version:
            return status
        time.sleep(0.05)
    raise AssertionError(f"the process never served challenger {version}")


def test_without_an_arm_the_policy_and_nothing_live(client):
    status = _status(client)
    assert status["active"] is None and status["comparison"] is None
    assert status["recent"] == [] and status["steps"] == [] and status["last_verdict"] is None
    assert status["policy"]["name"] == "direct"
    assert status["policy"]["steps"] == [5.0, 25.0, 50.0, 100.0]
    assert status["model"] == client.app.state.runtime.settings.family


def test_a_live_canary_is_read_at_both_paths(make_client):
    client, champion, challenger = _challenged(make_client)
    status = _wait_served(client, challenger)
    active = status["active"]
    assert (active["version"], active["champion_version"]) == (challenger, champion)
    assert (active["mode"], active["step"], active["percentage"]) == ("canary", 0, 50.0)
    assert active["status"] == "active" and active["ended_at"] is None
    assert status["champion_version"] == champion
    assert status["policy"] == {**status["policy"], "name": "canary", "steps": [50.0, 100.0]}
    assert [s["event"] for s in status["steps"]] == ["challenger_started"]
    assert status["steps"][0]["metrics"]["percentage"] == 50.0
    # The analysis' view as it stands: no outcome yet, so hold (never a pass).
    comparison = status["comparison"]
    assert status["comparison_error"] is None
    assert comparison["verdict"] == "hold" and "too few outcomes" in comparison["reason"]
    assert comparison["challenger"]["version"] == challenger
    assert comparison["champion"]["version"] == champion
    family = status["model"]
    same = _status(client, f"/models/{family}/challenger")
    assert same["active"] == active and same["recent"] == status["recent"]

    # The canary share of this process, per model, for Prometheus.
    text = client.get("/metrics").text
    assert f'challenger_canary_percentage{{model="{family}"}} 50.0' in text


def test_operator_advances_to_champion_audited_as_an_override(make_client):
    client, _champion, challenger = _challenged(make_client)
    r = client.post("/challenger/advance", json={"reason": "looks fine"})
    assert r.status_code == 401  # admin only, checked before anything moves
    assert _status(client)["active"]["percentage"] == 50.0

    r = client.post("/challenger/advance", json={"reason": "looks fine"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "step" and "canary 100%" in body["message"]
    assert body["status"]["active"]["percentage"] == 100.0
    assert body["status"]["last_verdict"]["verdict"] == "advance"
    assert body["status"]["last_verdict"]["by"] == "operator"

    r = client.post("/challenger/advance", json={"reason": "ship it"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "promoted"
    assert body["status"]["active"] is None
    assert body["status"]["champion_version"] == challenger
    assert body["status"]["recent"][0]["status"] == "promoted"
    steps = body["status"]["steps"]
    assert [s["event"] for s in steps] == [
        "challenger_promoted",
        "challenger_advanced",
        "challenger_started",
    ]
    assert steps[0]["reason"] == "operator override: ship it"
    assert steps[0]["metrics"]["by"] == "operator" and steps[0]["metrics"]["override"] is True
    # This process serves the new champion already.
    models = client.get("/models").json()
    assert models["champion_version"] == models["served_version"] == challenger


def test_abort_clears_the_arm_and_a_second_abort_is_409(make_client):
    client, champion, challenger = _challenged(make_client)
    _wait_served(client, challenger)
    r = client.post("/challenger/abort", json={"reason": "bad feeling"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "aborted" and body["status"]["active"] is None
    assert body["status"]["served_challenger"] is None  # this process dropped it at once
    assert body["status"]["champion_version"] == champion
    ended = body["status"]["recent"][0]
    assert ended["status"] == "aborted" and ended["ended_at"] is not None
    assert ended["last_verdict"]["verdict"] == "abort"
    assert ended["last_verdict"]["reason"] == "aborted by an operator: bad feeling"

    for action in ("abort", "advance"):
        r = client.post(f"/challenger/{action}", json={"reason": "again"}, headers=ADMIN)
        assert r.status_code == 409 and "no challenger is live" in r.json()["detail"], r.text
    r = client.post("/challenger/abort", json={"reason": ""}, headers=ADMIN)
    assert r.status_code == 422  # an override says why


def test_start_by_hand_and_its_refusals(make_client):
    client, champion, challenger = _challenged(make_client)
    client.post("/challenger/abort", json={"reason": "restart by hand"}, headers=ADMIN)

    r = client.post("/challenger", json={"version": challenger, "reason": "retry"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "started"
    assert body["message"] == f"version {challenger} is live against {champion} (canary at 50%)"
    active = body["status"]["active"]
    assert active["version"] == challenger and active["reason"] == "started by an operator: retry"
    assert body["status"]["served_challenger"] == challenger
    assert [a["status"] for a in body["status"]["recent"]] == ["active", "aborted"]

    for version, code, said in (
        (champion, 409, "already the champion"),
        ("99", 404, "does not exist"),
        ("abc", 404, "does not exist"),
    ):
        r = client.post("/challenger", json={"version": version}, headers=ADMIN)
        assert r.status_code == code and said in r.json()["detail"], r.text
    r = client.post("/challenger", json={"version": challenger, "extra": 1}, headers=ADMIN)
    assert r.status_code == 422
    r = client.post("/challenger", json={"version": challenger})
    assert r.status_code == 401


def test_a_direct_policy_refuses_a_challenger(client):
    first = train(client)["model_version"]
    second = train(client, seed=2, force=True)["model_version"]
    r = client.post("/challenger", json={"version": first}, headers=ADMIN)
    assert r.status_code == 409 and "'direct'" in r.json()["detail"], r.text
    assert second != first and _status(client)["active"] is None


def test_a_shadow_arm_is_read_with_its_paired_rows(make_client):
    client, champion, challenger = _challenged(
        make_client, challenger_policy="shadow", challenger_shadow_rate=0.5
    )
    _wait_served(client, challenger)
    rows = [[0.3, -0.2], [1.0, 0.5], [-0.4, 0.9], [0.1, 0.1]] * 25
    ids = [f"shadow-{i}" for i in range(len(rows))]
    r = client.post("/predict/batch", json={"features": rows, "request_ids": ids})
    body = r.json()
    assert r.status_code == 200 and "model_versions" not in body  # the champion answered all
    assert body["model_version"] == champion
    status = _status(client)
    active = status["active"]
    assert (active["mode"], active["step"], active["percentage"]) == ("shadow", -1, 0.0)
    assert active["shadow_rate"] == 0.5
    comparison = status["comparison"]
    # Every request was the champion's to answer; about half were also scored in shadow.
    assert comparison["mode"] == "shadow" and comparison["champion"]["rows"] == len(rows)
    assert 0 < comparison["challenger"]["rows"] < len(rows)
    assert comparison["verdict"] == "hold"  # no outcome yet
    text = client.get("/metrics").text
    assert f'challenger_canary_percentage{{model="{status["model"]}"}} 0.0' in text
