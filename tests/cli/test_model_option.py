"""``--model NAME`` on the CLI commands that act on a model: against a live API serving the
default ``classification`` and ``iris``, each command reaches ``/models/iris/...`` and leaves
the default model alone; without the option they keep acting on the default model."""

from __future__ import annotations

import httpx
import pytest

from tests.cli.conftest import live_api, run_cli

KEY = "cli-model-option-key-0123456789"
HEADERS = {"X-API-Key": KEY}
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli-model-option")
    with live_api(tmp, KEY, IA_CONTINU_RATE_LIMIT_RETRAIN="1000/minute") as running:
        yield running


def _train(url: str, model: str, seed: int) -> None:
    base = f"{url}/models/{model}"
    r = httpx.post(f"{base}/generate", json={"samples": 300, "seed": seed}, headers=HEADERS)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{base}/retrain", json={"force": True}, headers=HEADERS, timeout=120)
    assert r.status_code == 200, r.text


def _champion(url: str, model: str) -> str | None:
    return httpx.get(f"{url}/models/{model}").json()["champion_version"]


def test_models_commands_act_on_the_named_model(live):
    env, url = live
    for seed in (1, 2):
        _train(url, "iris", seed)
    _train(url, "classification", 1)

    r = run_cli(env, "models", "list", "--model", "iris")
    assert r.returncode == 0, r.stderr
    assert "Registry of iris (registered as" in r.stdout, r.stdout
    assert "champion          : 2" in r.stdout and "rollback restores : 1" in r.stdout
    r = run_cli(env, "models", "list")  # no option: the default model
    assert r.returncode == 0 and "Registry of classification" in r.stdout, r.stdout

    r = run_cli(env, "models", "promote", "1", "--model", "iris", "--reason", "known good")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("promoted: champion is now version 1"), r.stdout
    assert _champion(url, "iris") == "1" and _champion(url, "classification") == "1"

    r = run_cli(env, "models", "rollback", "--model", "iris")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("rolled back: champion is now version 2"), r.stdout
    assert _champion(url, "iris") == "2" and _champion(url, "classification") == "1"

    # classification has one version: nothing to roll back, and iris is not touched.
    r = run_cli(env, "models", "rollback")
    assert r.returncode == 1 and r.stderr.startswith("error: the API answered 409:"), r.stderr
    assert _champion(url, "iris") == "2"

    r = run_cli(env, "models", "list", "--model", "tulips")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "error: the API answered 404: no model named 'tulips'; "
        "declared: bike_traffic, classification, delay, iris"
    )


def test_rollout_commands_act_on_the_named_model(live):
    env, url = live
    r = run_cli(env, "rollout", "disable", "--model", "iris", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"would send POST {url}/models/iris/rollout/ml/disable;" in r.stdout, r.stdout

    r = run_cli(env, "rollout", "disable", "--model", "iris")
    assert r.returncode == 0, r.stderr
    assert "ML ROLLOUT STATUS (iris)" in r.stdout and "ML enabled        : no" in r.stdout
    answer = httpx.post(f"{url}/models/iris/predict", json={"features": SETOSA}).json()
    assert answer["decision"] == "fallback_disabled"

    r = run_cli(env, "rollout", "status")  # the default model kept ML on
    assert r.returncode == 0, r.stderr
    assert "ML ROLLOUT STATUS (classification)" in r.stdout
    assert "ML enabled        : yes" in r.stdout

    r = run_cli(env, "rollout", "enable", "--percentage", "50", "--model", "iris")
    assert r.returncode == 0, r.stderr
    assert "ML traffic        : 50%" in r.stdout
    r = run_cli(env, "rollout", "status", "--model", "iris")
    assert "ML enabled        : yes" in r.stdout and "ML traffic        : 50%" in r.stdout
