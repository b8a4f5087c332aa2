"""``ia-continu challenger`` against a live API server (uvicorn in a subprocess, real SQLite
and MLflow) under a canary policy: status side by side, an operator's abort, start and
advance to champion, one-line errors."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.cli.conftest import live_api, run_cli

KEY = "cli-challenger-key-0123456789"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-challenger")
    with live_api(
        tmp,
        KEY,
        IA_CONTINU_RATE_LIMIT_RETRAIN="1000/minute",
        IA_CONTINU_CHALLENGER_POLICY="canary",
        IA_CONTINU_CANARY_STEPS="[50, 100]",
    ) as running:
        yield running


def _cli(env, *args: str) -> subprocess.CompletedProcess:
    return run_cli(env, "challenger", *args)


def _train(url: str, seed: int) -> dict:
    headers = {"X-API-Key": KEY}
    r = httpx.post(url + "/generate", json={"samples": 500, "seed": seed}, headers=headers)
    assert r.status_code == 200, r.text
    r = httpx.post(url + "/retrain", json={}, headers=headers, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def test_status_abort_start_advance_through_the_api(live):
    env, url = live
    r = _cli(env, "abort", "--reason", "nothing there")
    assert r.returncode == 1
    assert r.stderr.startswith("error: the API answered 409: no challenger is live"), r.stderr

    assert _train(url, 1)["status"] == "promoted"
    second = _train(url, 2)
    assert second["status"] == "challenger", second

    r = _cli(env, "status")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "policy canary, canary steps [50, 100] %" in out
    assert "version 2 against champion 1: canary 50%" in out
    assert "champion  challenger" in out  # the two arms side by side
    assert "verdict now: HOLD: too few outcomes" in out
    assert "challenger_started" in out
    # The same arm at the model's own path (--model): the default model here.
    r = _cli(env, "status", "--model", "classification")
    assert r.returncode == 0 and r.stdout == out, r.stderr
    r = _cli(env, "status", "--model", "nosuchmodel")
    assert r.returncode == 1 and r.stderr.startswith("error: the API answered 404:"), r.stderr

    r = _cli(env, "abort", "--reason", "by hand")
    assert r.returncode == 0, r.stderr
    assert "challenger 2 aborted" in r.stdout and "no challenger live; champion 1" in r.stdout
    assert "last verdict: abort: aborted by an operator: by hand" in r.stdout

    r = _cli(env, "start", "2", "--reason", "again")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("version 2 is live against 1 (canary at 50%)")

    r = _cli(env, "advance", "--reason", "ramp")
    assert r.returncode == 0 and "advanced to canary 100%" in r.stdout, r.stderr
    r = _cli(env, "advance", "--reason", "ship")
    assert r.returncode == 0 and "challenger 2 is champion (operator override)" in r.stdout
    assert httpx.get(url + "/models").json()["champion_version"] == "2"

    r = _cli(env, "start", "1", "--api-key", "wrong-key")
    assert r.returncode == 1
    assert r.stderr.strip() == "error: the API refused the key (403): invalid API key"
    r = _cli(env, "advance")  # the reason is required
    assert r.returncode == 2
