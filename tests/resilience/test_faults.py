"""Faults caused for real: a corrupt champion artifact, concurrent retrains, a database that
goes away during traffic (through a TCP proxy we cut), SIGTERM under load."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ia_continu.learn import registry
from ia_continu.learn.training import retrain
from ia_continu.store.engine import make_engine, session_scope
from ia_continu.store.tables import ChampionHistory, ModelEvent, PredictionLog, ServingFormRecord
from notifications import reset_cooldowns
from notifications.receiver import WebhookReceiver
from tests.conftest import ADMIN, train
from tests.live import settings_env, start_api


def _artifact_files(settings, version: str) -> list[Path]:
    client = registry.mlflow_client(settings)
    location = client.get_model_version_download_uri(settings.registered_model_name, version)
    root = Path(location.removeprefix("file://"))
    return [p for p in root.rglob("*") if p.is_file() and p.name.startswith("model.")]


def _break(settings, engine, fault: str) -> None:
    """Break version 1 everywhere a replica can load it from: its MLflow artifact and its
    served form in the DB (a corrupt form alone is read from MLflow instead)."""
    files = _artifact_files(settings, "1")
    assert files, "the champion's serialized model should exist"
    for f in files:
        if fault == "corrupt":
            f.write_bytes(b"\x00not a model\x00")
        else:
            f.unlink()
    with session_scope(engine) as session:
        forms = session.query(ServingFormRecord)
        if fault == "corrupt":
            forms.update({ServingFormRecord.arrays: b"\x00not a form\x00"})
        else:
            forms.delete()


@pytest.mark.parametrize("fault", ["corrupt", "missing"])
def test_broken_champion_artifact_starts_on_fallback_and_alerts(make_client, fault, db_url):
    if db_url.startswith("postgresql"):
        pytest.skip("artifact store fault: the database backend plays no part")
    first = make_client()
    train(first)
    settings = first.app.state.runtime.settings
    _break(settings, first.app.state.runtime.engine, fault)
    reset_cooldowns()
    with WebhookReceiver() as receiver:
        second = make_client(discord_webhook_url=receiver.url)
        health = second.get("/health").json()
        assert health["status"] == "degraded"
        assert "champion 1 failed to load" in health["checks"]["model_error"]
        r = second.post("/predict", json={"features": [0.5, 0.1]})
        assert r.status_code == 200 and r.json()["served_by"] == "fallback"
        titles = [e["title"] for p in receiver.received for e in p.get("embeds", [])]
        assert "Champion model failed to load" in titles


def test_an_artifact_store_outage_does_not_stop_a_champion_with_a_served_form(make_client):
    first = make_client()
    train(first)
    settings = first.app.state.runtime.settings
    for f in _artifact_files(settings, "1"):
        f.unlink()
    second = make_client()  # a replica starting while the artifacts are gone
    health = second.get("/health").json()
    assert health["checks"]["model_error"] is None, health
    r = second.post("/predict", json={"features": [0.5, 0.1]})
    assert r.status_code == 200 and r.json()["served_by"] == "ml", r.text


def test_two_retrains_at_once_are_serialized(client):
    for seed in (1, 2):
        client.post("/generate", json={"samples": 1000, "seed": seed}, headers=ADMIN)
    runtime = client.app.state.runtime
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        return retrain(runtime.settings, runtime.engine, force=True, reason="race")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run(), range(2)))
    assert sorted(r.model_version for r in results) == ["1", "2"]
    with session_scope(runtime.engine) as s:
        events = [
            (e.event, e.version) for e in s.scalars(select(ModelEvent).order_by(ModelEvent.id))
        ]
        history = s.scalars(select(ChampionHistory).order_by(ChampionHistory.id)).all()
    # Never interleaved: each retrain's events are contiguous, in lock order.
    first, second = sorted(results, key=lambda r: r.model_version)
    assert events == [("retrain", "1"), ("promote", "1"), ("retrain", "2"), ("promote", "2")]
    assert [h.version for h in history] == ["1", "2"]
    assert history[1].previous_version == "1"  # the second saw the first as champion
    assert second.previous_champion == "1" and first.previous_champion is None
    assert client.get("/models").json()["champion_version"] == "2"


class TcpProxy:
    """A loopback TCP proxy we can cut and restore: a real network fault for the database."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.writers: set = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def up(self) -> None:
        async def start():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._run(start())

    def cut(self) -> None:
        async def stop():
            self.server.close()
            for w in list(self.writers):
                w.transport.abort()
            self.writers.clear()

        self._run(stop())


@pytest.mark.slow
def test_database_outage_during_traffic_loses_nothing(
    settings_factory, db_url, tmp_path, make_client
):
    if not db_url.startswith("postgresql"):
        pytest.skip("the outage is a cut TCP connection: PostgreSQL only")
    proxy = TcpProxy(5432)
    proxy.up()
    proxied = db_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    client = make_client(database_url=proxied)
    train(client)
    answered = []
    for i in range(50):
        r = client.post("/predict", json={"features": [0.1 * i, 0.2], "request_id": f"pre-{i}"})
        answered.append(r.json()["request_id"])

    proxy.cut()
    for i in range(200):
        r = client.post("/predict", json={"features": [0.1, 0.01 * i], "request_id": f"out-{i}"})
        assert r.status_code == 200, r.text
        assert r.json()["served_by"] == "ml"
        answered.append(r.json()["request_id"])
    time.sleep(1.2)  # let the health check's one-second cache expire
    health = client.get("/health")
    assert health.status_code == 503
    assert "database unreachable" in health.json()["reason"]
    assert client.app.state.runtime.writer.last_error is not None

    proxy.up()
    writer = client.app.state.runtime.writer
    deadline = time.monotonic() + 30
    while writer.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    assert writer.pending == 0
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        logged = set(s.scalars(select(PredictionLog.request_id)).all())
    engine.dispose()
    assert set(answered) <= logged
    time.sleep(1.2)
    assert client.get("/health").status_code == 200


@pytest.mark.slow
def test_sigterm_under_load_keeps_every_answered_prediction(settings_factory, tmp_path, db_url):
    settings = settings_factory(log_flush_interval_ms=200, log_batch_size=2000)
    from ia_continu.store import migrate

    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    api = start_api(settings_env(settings), tmp_path)
    answered: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=api.url, timeout=5) as http:
            for i in range(5000):  # bounded
                if stop.is_set():
                    return
                rid = f"w{worker}-{i}"
                try:
                    r = http.post("/predict", json={"features": [0.1, 0.2], "request_id": rid})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    answered.append(rid)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(answered) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    code = api.stop(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join(10)
    # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM is a clean exit.
    assert code in (0, -signal.SIGTERM), api.log()
    assert "Application shutdown complete" in api.log()
    assert len(answered) >= 300
    with session_scope(engine) as s:
        logged = set(s.scalars(select(PredictionLog.request_id)).all())
    engine.dispose()
    missing = set(answered) - logged
    assert not missing, f"{len(missing)} answered predictions missing after SIGTERM"
