"""Registry changes race for real: promote, rollback and retrain at once, from threads and from
two API processes sharing one DB and one MLflow store. Afterwards the DB champion, MLflow's
``champion`` alias and the version every process serves are the same, and the champion history
holds exactly one row per change, each recorded against the state it replaced."""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from ia_continu.learn import registry
from ia_continu.learn.training import retrain, run_name
from ia_continu.store.engine import session_scope
from ia_continu.store.locks import exclusive, try_exclusive
from ia_continu.store.tables import ChampionHistory
from tests.conftest import ADMIN, train
from tests.live import settings_env, start_api

ROUNDS = 6


def _history(engine, family: str) -> list[ChampionHistory]:
    with session_scope(engine) as s:
        return list(
            s.scalars(
                select(ChampionHistory)
                .where(ChampionHistory.family == family)
                .order_by(ChampionHistory.id)
            )
        )


def _db_champion(engine, family: str) -> str | None:
    with session_scope(engine) as s:
        return registry.champion_version(s, family)


def _alias(settings) -> str | None:
    aliases = (
        registry.mlflow_client(settings)
        .get_registered_model(settings.registered_model_name)
        .aliases
    )
    return str(aliases["champion"]) if "champion" in aliases else None


def _assert_one_row_per_change(rows: list[ChampionHistory], changes: int) -> None:
    """Replaying the history, each row's previous_version is the champion it replaced: two
    changes that had read the same state (the race) would both name it."""
    assert len(rows) == changes, [(r.action, r.version, r.previous_version) for r in rows]
    stack: list[str] = []
    for r in rows:
        assert r.previous_version == (stack[-1] if stack else None), (r.action, r.version)
        if r.action == "rollback":
            assert len(stack) > 1 and r.version == stack[-2]
            stack.pop()
        else:
            assert r.version != (stack[-1] if stack else None)
            stack.append(r.version)


def _ops(rng: random.Random, versions: int, round_no: int) -> list[tuple]:
    ops: list[tuple] = [
        ("promote", str(rng.randint(1, versions))),
        ("promote", str(rng.randint(1, versions))),
        ("rollback",),
        ("rollback",),
    ]
    if round_no % 2 == 0:
        ops.append(("retrain",))
    rng.shuffle(ops)
    return ops


@pytest.mark.slow
def test_threads_racing_promote_rollback_retrain_stay_consistent(client):
    for seed in (1, 2, 3):
        train(client, seed=seed, force=True)
    runtime = client.app.state.runtime
    settings, engine, family = runtime.settings, runtime.engine, runtime.settings.family
    changes = 3
    rng = random.Random(11)

    def run(op: tuple, barrier: threading.Barrier) -> int:
        barrier.wait()
        if op[0] == "promote":
            return int(registry.promote(engine, settings, op[1], reason="race").changed)
        if op[0] == "rollback":
            try:
                registry.rollback(engine, settings, reason="race")
            except registry.NothingToRollBack:
                return 0
            return 1
        result = retrain(settings, engine, force=True, reason="race")
        return int(result.promoted and result.previous_champion != result.model_version)

    versions = 3
    for round_no in range(ROUNDS):
        ops = _ops(rng, versions, round_no)
        barrier = threading.Barrier(len(ops))
        with ThreadPoolExecutor(len(ops)) as pool:
            changes += sum(pool.map(lambda op, b=barrier: run(op, b), ops))
        versions += sum(op[0] == "retrain" for op in ops)

        champion = _db_champion(engine, family)
        assert champion is not None
        assert _alias(settings) == champion, f"round {round_no}"
        runtime.holder.refresh()
        assert runtime.holder.current.version == champion
        _assert_one_row_per_change(_history(engine, family), changes)


def _wait_served(url: str, version: str, timeout: float = 20) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        served = httpx.get(url + "/health", timeout=5).json()["checks"]["served_version"]
        if served == version or time.monotonic() > deadline:
            return served
        time.sleep(0.1)


@pytest.mark.slow
def test_two_api_processes_racing_registry_calls_agree(client, tmp_path):
    for seed in (1, 2, 3):
        train(client, seed=seed, force=True)
    client.post("/generate", json={"samples": 600, "seed": 4}, headers=ADMIN)
    runtime = client.app.state.runtime
    settings, engine, family = runtime.settings, runtime.engine, runtime.settings.family
    env = {**settings_env(settings), "IA_CONTINU_RATE_LIMIT_RETRAIN": "1000/minute"}
    with ThreadPoolExecutor(2) as pool:
        apis = list(pool.map(lambda _: start_api(env, tmp_path), range(2)))
    changes = 3
    rng = random.Random(5)

    def call(i: int, op: tuple, barrier: threading.Barrier) -> int:
        url = apis[i % 2].url
        barrier.wait()
        if op[0] == "promote":
            r = httpx.post(f"{url}/models/{op[1]}/promote", headers=ADMIN, timeout=60)
            assert r.status_code == 200, r.text
            return int(r.json()["changed"])
        if op[0] == "rollback":
            r = httpx.post(f"{url}/models/rollback", headers=ADMIN, timeout=60)
            assert r.status_code in (200, 409), r.text
            assert r.status_code == 409 or r.json()["changed"]
            return int(r.status_code == 200)
        r = httpx.post(f"{url}/retrain", json={"force": True}, headers=ADMIN, timeout=300)
        assert r.status_code == 200, r.text
        body = r.json()
        return int(body["promoted"] and body["previous_champion"] != body["model_version"])

    try:
        versions = 3
        for round_no in range(ROUNDS):
            ops = _ops(rng, versions, round_no)
            barrier = threading.Barrier(len(ops))
            with ThreadPoolExecutor(len(ops)) as pool:
                counted = pool.map(
                    lambda args, b=barrier: call(*args, b), list(enumerate(ops, round_no))
                )
                changes += sum(counted)
            versions += sum(op[0] == "retrain" for op in ops)

            champion = _db_champion(engine, family)
            assert champion is not None
            assert _alias(settings) == champion, f"round {round_no}"
            for api in apis:
                assert _wait_served(api.url, champion) == champion, f"round {round_no}"
                assert httpx.get(api.url + "/models", timeout=10).json()["champion_version"] == (
                    champion
                )
            _assert_one_row_per_change(_history(engine, family), changes)
    finally:
        for api in apis:
            api.stop()


def test_alias_failure_rolls_the_change_back(client):
    train(client, seed=1)
    train(client, seed=2, force=True)
    runtime = client.app.state.runtime
    settings, engine, family = runtime.settings, runtime.engine, runtime.settings.family
    before = _history(engine, family)
    # MLflow refuses an alias on a version it does not have: a real failure after the flush.
    with (
        pytest.raises(Exception, match="99"),
        registry.registry_session(engine, settings) as session,
    ):
        registry.set_champion(session, settings, "99", reason="doomed", previous="2")
    assert len(_history(engine, family)) == len(before)
    assert _db_champion(engine, family) == "2" == _alias(settings)


def test_set_champion_refuses_a_session_without_the_lock(client):
    train(client)
    runtime = client.app.state.runtime
    with session_scope(runtime.engine) as session, pytest.raises(RuntimeError, match="lock"):
        registry.set_champion(session, runtime.settings, "1", reason="no lock")


def test_an_alias_moved_behind_the_db_s_back_is_set_from_the_db(client):
    for seed in (1, 2, 3):
        train(client, seed=seed, force=True)
    runtime = client.app.state.runtime
    settings = runtime.settings
    mc = registry.mlflow_client(settings)

    # By the check every monitor_performance run makes (not by the API processes, which
    # serve without MLflow); a replica loading the champion leaves the alias alone.
    mc.set_registered_model_alias(settings.registered_model_name, "champion", "1")
    runtime.holder.refresh(force=True)
    assert _alias(settings) == "1"
    registry.reconcile_alias(runtime.engine, settings)
    assert _alias(settings) == "3"

    # On taking the lock, before the change reads anything: here a rollback from 3 to 2.
    mc.delete_registered_model_alias(settings.registered_model_name, "champion")
    r = client.post("/models/rollback", headers=ADMIN)
    assert r.status_code == 200 and r.json()["champion_version"] == "2"
    assert _alias(settings) == "2"

    # Promoting the champion changes nothing and says so.
    r = client.post("/models/2/promote", headers=ADMIN)
    assert r.status_code == 200 and r.json()["changed"] is False
    assert len(_history(runtime.engine, settings.family)) == 4


def test_lock_excludes_other_holders_and_is_released_on_error(engine):
    name = f"test-{random.getrandbits(32)}"
    held, release = threading.Event(), threading.Event()

    def holder():
        with exclusive(engine, name):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    with try_exclusive(engine, name) as acquired:
        assert not acquired
    release.set()
    t.join(10)
    with pytest.raises(LookupError), exclusive(engine, name):
        raise LookupError("the body failed")
    with try_exclusive(engine, name) as acquired:
        assert acquired


def test_run_names_keep_the_timestamp_and_differ_within_a_second():
    now = datetime(2026, 11, 23, 10, 30, 0, tzinfo=UTC)
    names = {run_name(now) for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"retrain_20261123_103000_[0-9a-f]{6}", n) for n in names)
