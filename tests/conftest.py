"""Shared fixtures: a real SQLite file *and* a real PostgreSQL schema per test, a real MLflow
store in a temp folder, the real app through its lifespan.

Every test that takes ``db_url`` (directly or through ``settings``/``client``/``engine``) runs
twice: ``[sqlite]`` and ``[postgresql]``. The PostgreSQL run is skipped, saying why, when
127.0.0.1:5432 is unreachable (set IA_CONTINU_TEST_PG_URL to point elsewhere).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import pytest
from sqlalchemy import create_engine, text

from ia_continu.config import Settings

API_KEY = "test-admin-key-0123456789"
ADMIN = {"X-API-Key": API_KEY}
PG_URL = os.environ.get(
    "IA_CONTINU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_pg_state: dict[str, object] = {}


def pg_available() -> bool:
    if "ok" not in _pg_state:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["ok"] = True
        except Exception as exc:
            _pg_state["ok"] = False
            _pg_state["why"] = str(exc).splitlines()[0]
    return bool(_pg_state["ok"])


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory) -> str:
    """One MLflow store for the session (creating its tables takes seconds); each test gets
    its own registered model names through a unique ``model_name_prefix``."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ia_continu.db'}"
        return
    if not pg_available():
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {_pg_state.get('why')}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def settings_factory(db_url: str, tmp_path: Path, mlflow_uri: str) -> Callable[..., Settings]:
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def make(**overrides) -> Settings:
        values = dict(
            environment="test",
            data_dir=tmp_path / "data",
            database_url=db_url,
            mlflow_tracking_uri=mlflow_uri,
            mlflow_artifacts_dir=tmp_path.parent / "mlartifacts",
            model_name_prefix=prefix,
            api_key=API_KEY,
            rate_limit_predict="100000/minute",
            rate_limit_retrain="1000/minute",
            champion_poll_seconds=0.2,
            rollout_cache_seconds=0.1,
            log_flush_interval_ms=10,
            alert_cooldown_seconds=0,
        )
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory) -> Settings:
    return settings_factory()


@pytest.fixture
def engine(settings: Settings):
    from ia_continu.store import migrate
    from ia_continu.store.engine import make_engine

    eng = make_engine(settings.database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def make_client(settings_factory):
    """Start the real app (lifespan included) on given settings; closed at teardown."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    opened = []

    def make(**overrides):
        client = TestClient(create_app(settings_factory(**overrides)))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def train(client, samples: int = 1000, seed: int = 1, drift=False, **retrain) -> dict:
    """Generate a dataset and retrain on it through the API; returns the retrain answer."""
    r = client.post(
        "/generate", json={"samples": samples, "seed": seed, "drift": drift}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    r = client.post("/retrain", json=retrain or None, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def trained_client(client):
    train(client)
    return client
