"""Two API processes on one DB: a promotion or a rollback in one reaches the other."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ADMIN, train
from tests.live import settings_env, start_api


def _served(url: str) -> str | None:
    return httpx.get(url + "/health", timeout=5).json()["checks"]["served_version"]


def _wait_for(url: str, version: str | None, timeout: float = 30) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (got := _served(url)) == version:
            return got
        time.sleep(0.2)
    return _served(url)


@pytest.mark.slow
def test_other_replica_picks_up_new_champion_without_restart(client, tmp_path):
    settings = client.app.state.runtime.settings
    replica = start_api(settings_env(settings), tmp_path)
    try:
        assert _served(replica.url) is None
        train(client, seed=1)
        assert _wait_for(replica.url, "1") == "1"
        train(client, seed=2, force=True)
        assert _wait_for(replica.url, "2") == "2"
        assert client.post("/models/rollback", headers=ADMIN).status_code == 200
        assert _wait_for(replica.url, "1") == "1"
        r = httpx.post(replica.url + "/predict", json={"features": [0.2, 0.1]}, timeout=5)
        assert r.json()["model_version"] == "1"
    finally:
        replica.stop()
