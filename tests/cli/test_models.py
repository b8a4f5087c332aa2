"""``ia-continu models`` against a live API server (uvicorn in a subprocess, real SQLite and
MLflow): list the declared models and the registry, promote, roll back, one-line errors."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.cli.conftest import live_api, run_cli
from tests.live import free_port

KEY = "cli-models-key-0123456789"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-models")
    with live_api(tmp, KEY, IA_CONTINU_RATE_LIMIT_RETRAIN="1000/minute") as running:
        yield running


def _cli(env, *args: str) -> subprocess.CompletedProcess:
    return run_cli(env, "models", *args)


def _train(url: str, seed: int) -> str:
    headers = {"X-API-Key": KEY}
    r = httpx.post(url + "/generate", json={"samples": 500, "seed": seed}, headers=headers)
    assert r.status_code == 200, r.text
    r = httpx.post(url + "/retrain", json={"force": True}, headers=headers, timeout=120)
    assert r.status_code == 200, r.text
    return httpx.get(url + "/models").json()["champion_version"]


def _champion(url: str) -> str | None:
    return httpx.get(url + "/models").json()["champion_version"]


def test_errors_before_any_model_are_one_line(live):
    env, _ = live
    r = _cli(env, "rollback")
    assert r.returncode == 1 and r.stderr.startswith("error: the API answered 409:"), r.stderr

    r = _cli(env, "list")
    assert r.returncode == 0, r.stderr
    assert "no version registered yet" in r.stdout and "champion          : none" in r.stdout


def test_list_promote_rollback_through_the_api(live):
    env, url = live
    assert [_train(url, seed) for seed in (1, 2)] == ["1", "2"]

    r = _cli(env, "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split()[:3] == ["NAME", "TASK", "FEATURES"]
    # One line per built-in, the served family marked with *.
    declared = {line[2:].split()[0]: line for line in lines[2:6]}
    assert list(declared) == ["bike_traffic", "classification", "delay", "iris"], r.stdout
    assert [name for name, line in declared.items() if line.startswith("* ")] == ["classification"]
    assert declared["classification"].split()[2:6] == [
        "binary",
        "2",
        "linear_model.LogisticRegression",
        "accuracy",
    ]
    assert "rmse (lower)" in declared["delay"] and "built-in" in declared["iris"]
    assert "champion          : 2" in r.stdout and "rollback restores : 1" in r.stdout
    assert any(line.split()[:2] == ["2", "champion"] for line in lines), r.stdout

    r = _cli(env, "promote", "1", "--reason", "known good")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("promoted: champion is now version 1"), r.stdout
    assert "served here       : 1" in r.stdout and _champion(url) == "1"
    history = httpx.get(url + "/models").json()["history"]
    assert history[0]["version"] == "1" and history[0]["reason"] == "known good"

    r = _cli(env, "promote", "1")
    assert r.returncode == 0 and "already champion: nothing changed" in r.stdout

    r = _cli(env, "rollback", "--reason", "not that one")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("rolled back: champion is now version 2") and _champion(url) == "2"


def test_unknown_version_bad_key_and_api_down(live):
    env, url = live
    before = _champion(url)
    r = _cli(env, "promote", "42")
    assert r.returncode == 1 and r.stderr.startswith("error: the API answered 404:"), r.stderr
    assert "42" in r.stderr

    r = _cli(env, "rollback", "--api-key", "wrong-key")
    assert r.returncode == 1
    assert r.stderr.strip() == "error: the API refused the key (403): invalid API key"
    assert _champion(url) == before

    r = _cli(env, "list", "--api-url", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 1 and r.stderr.startswith("error: cannot reach the API at"), r.stderr
