"""Flow tests: the flows run for real under one Prefect test server per session, against
the real app, a real SQLite database, a real MLflow store and a real HTTP server standing in
for Discord (pytest-httpserver).

Each flow run builds its settings from the environment (``Settings()``), as it does when a
Prefect worker runs it, so ``flow_settings`` exports the test's settings as IA_CONTINU_*
variables.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from notifications import reset_cooldowns


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One Prefect server for the whole session (it takes ~25 s to start)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    # SQLite only here: the SQL the flows run is covered on PostgreSQL by tests/api and
    # tests/core; the flows add orchestration, which does not depend on the backend.
    return f"sqlite:///{tmp_path / 'ia_continu.db'}"


class FakeDiscord:
    """Discord's webhook endpoint on a local HTTP server: 204 to every POST unless told."""

    PATH = "/api/webhooks/1/flow-tests-token"

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.answer(204)

    @property
    def url(self) -> str:
        return self.server.url_for(self.PATH)

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Answer every later POST with this (Discord's failure modes, for real over HTTP)."""
        self.server.clear_all_handlers()
        self.server.expect_request(self.PATH, method="POST").respond_with_data(
            body, status=status, headers=headers or {}
        )

    def embeds(self) -> list[dict[str, Any]]:
        """Every embed received, in order (a Discord payload carries a list of embeds)."""
        bodies = [json.loads(request.get_data()) for request, _ in self.server.log]
        return [e for body in bodies for e in body.get("embeds", [])]


@pytest.fixture
def receiver(httpserver: HTTPServer) -> FakeDiscord:
    return FakeDiscord(httpserver)


@pytest.fixture
def flow_settings(prefect_server, settings, receiver, monkeypatch):
    from ia_continu.config import get_settings

    env = {
        "ENVIRONMENT": settings.environment,
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": settings.database_url,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLFLOW_ARTIFACTS_DIR": str(settings.mlflow_artifacts_dir),
        "MODEL_NAME_PREFIX": settings.model_name_prefix,
        "API_KEY": settings.effective_api_key,
        "FAMILY": settings.family,
        "ALERT_COOLDOWN_SECONDS": "0",
        "DISCORD_WEBHOOK_URL": receiver.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(f"IA_CONTINU_{key}", value)
    get_settings.cache_clear()
    reset_cooldowns()
    yield get_settings()
    get_settings.cache_clear()
    reset_cooldowns()


def flush(client) -> None:
    """Predictions are logged in batches after the answer: wait until they are in the DB."""
    assert client.app.state.runtime.writer.flush(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app under uvicorn on a loopback port, in a thread; can stop and restart."""

    def __init__(self, settings, port: int) -> None:
        self.settings, self.port = settings, port
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        import uvicorn

        from api.main import create_app

        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            loop="asyncio",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            self._server = None


@pytest.fixture
def live_server(settings) -> Iterator[LiveServer]:
    server = LiveServer(settings, free_port())
    yield server
    server.stop()


def stored_event(api_url: str, name: str, event_id: str, timeout: float = 30.0) -> dict:
    """One event as the Prefect server stored it, read through its REST API.

    Events travel over a websocket and are persisted in batches by the server: poll.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        r = httpx.post(
            f"{api_url}/events/filter",
            json={"filter": {"event": {"name": [name]}, "id": {"id": [event_id]}}, "limit": 5},
            timeout=10,
        )
        r.raise_for_status()
        if r.json()["events"]:
            return r.json()["events"][0]
        assert time.monotonic() < deadline, f"event {name} {event_id} never stored"
        time.sleep(0.5)


__all__ = ["FakeDiscord", "LiveServer", "flush", "free_port", "os", "stored_event"]
