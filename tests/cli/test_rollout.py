"""``ia-continu rollout`` against a live API server (uvicorn in a subprocess, real SQLite)."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import create_engine, text

from tests.cli.conftest import live_api, run_cli
from tests.live import free_port

KEY = "cli-test-key-0123456789"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    with live_api(tmp, KEY) as (env, _url):
        yield env, create_engine(f"sqlite:///{tmp / 'data' / 'ia_continu.db'}")


def _cli(env, *args: str) -> subprocess.CompletedProcess:
    return run_cli(env, "rollout", *args)


def _row(engine) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT enabled, percentage FROM rollout_config")).one())


def test_enable_change_disable_through_the_api(live):
    env, engine = live
    r = _cli(env, "enable", "--percentage", "25")
    assert r.returncode == 0, r.stderr
    assert "ML enabled at 25%" in r.stdout and "ML traffic        : 25%" in r.stdout
    assert _row(engine) == (1, 25.0)

    r = _cli(env, "percentage", "40")
    assert r.returncode == 0 and _row(engine) == (1, 40.0)

    r = _cli(env, "disable")
    assert r.returncode == 0 and "ML enabled        : no" in r.stdout
    assert _row(engine) == (0, 40.0)

    r = _cli(env, "status")
    assert r.returncode == 0 and "ML ROLLOUT STATUS" in r.stdout and "Health:" in r.stdout
    assert _cli(env, "reset-stats").returncode == 0


def test_dry_run_sends_nothing(live):
    env, engine = live
    before = _row(engine)
    with engine.connect() as conn:
        updated = conn.execute(text("SELECT updated_at FROM rollout_config")).scalar()
    for args in (["enable", "--percentage", "90"], ["percentage", "70"], ["disable"]):
        r = _cli(env, *args, "--dry-run")
        assert r.returncode == 0 and "[dry-run] would send POST" in r.stdout, r.stderr
    assert _row(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT updated_at FROM rollout_config")).scalar() == updated


def test_options_override_settings_and_errors_are_one_line(live):
    env, engine = live
    before = _row(engine)
    r = _cli(env, "percentage", "10", "--api-key", "wrong-key")
    assert r.returncode == 1
    assert r.stderr.strip() == "error: the API refused the key (403): invalid API key"
    assert _row(engine) == before

    r = _cli(env, "status", "--api-url", f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 1 and r.stderr.startswith("error: cannot reach the API at")

    r = _cli(env, "percentage", "150")  # refused before anything is sent
    assert r.returncode == 2 and _row(engine) == before
