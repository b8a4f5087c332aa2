"""What the CLI tests share: a live API in a subprocess and a way to run the command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live import start_api

ROOT = Path(__file__).resolve().parent.parent.parent
CLI = str(Path(sys.executable).parent / "ia-continu")


@contextmanager
def live_api(tmp: Path, key: str, **extra: str) -> Iterator[tuple[dict[str, str], str]]:
    """A real API on SQLite and a local MLflow store under ``tmp``; yields the environment a
    CLI process needs to reach it (URL and key) and the URL."""
    settings_env = {
        "IA_CONTINU_DATA_DIR": str(tmp / "data"),
        "IA_CONTINU_API_KEY": key,
        "IA_CONTINU_MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "IA_CONTINU_ENVIRONMENT": "test",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        **extra,
    }
    server = start_api(settings_env, tmp)
    try:
        yield {**os.environ, **settings_env, "IA_CONTINU_API_URL": server.url}, server.url
    finally:
        server.stop()


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
