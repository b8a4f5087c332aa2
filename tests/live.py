"""Run the real API in a separate process on a loopback port (uvicorn), for tests that need
a second replica or a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveApi:
    process: subprocess.Popen
    url: str
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_api(
    settings_env: Mapping[str, str],
    log_dir: Path,
    *,
    extra_args: tuple[str, ...] = (),
    wait_for: str = "/health",
    timeout: float = 90,
) -> LiveApi:
    port = free_port()
    env = {**os.environ, **settings_env, "IA_CONTINU_PORT": str(port)}
    log_path = log_dir / f"api-{port}.log"
    # The child gets its own copy of the file descriptor: ours closes once it is started.
    with open(log_path, "w") as handle:
        proc = _popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "asyncio",
                # As every launcher we ship: the app, not uvicorn, reads X-Forwarded-For.
                "--no-proxy-headers",
                *extra_args,
            ],
            env,
            handle,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(url + wait_for, timeout=2).status_code in (200, 503):
                return LiveApi(proc, url, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"API did not start in {timeout}s:\n{log_path.read_text()}")


def settings_env(settings) -> dict[str, str]:
    """The IA_CONTINU_* variables that reproduce a Settings object in another process."""
    return {
        "IA_CONTINU_ENVIRONMENT": settings.environment,
        "IA_CONTINU_DATA_DIR": str(settings.data_dir),
        "IA_CONTINU_DATABASE_URL": settings.database_url,
        "IA_CONTINU_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "IA_CONTINU_MLFLOW_ARTIFACTS_DIR": str(settings.mlflow_artifacts_dir),
        "IA_CONTINU_MODEL_NAME_PREFIX": settings.model_name_prefix,
        "IA_CONTINU_FAMILY": settings.family,
        "IA_CONTINU_API_KEY": settings.api_key.get_secret_value() if settings.api_key else "",
        "IA_CONTINU_CHAMPION_POLL_SECONDS": str(settings.champion_poll_seconds),
        "IA_CONTINU_ROLLOUT_CACHE_SECONDS": str(settings.rollout_cache_seconds),
        "IA_CONTINU_RATE_LIMIT_PREDICT": settings.rate_limit_predict,
        "IA_CONTINU_LOG_FLUSH_INTERVAL_MS": str(settings.log_flush_interval_ms),
    }


def run_python(code: str, settings, *args: str, **env: str) -> Any:
    """Run ``code`` in a fresh interpreter configured by ``settings`` (``settings_env``, plus
    ``env``), with ``args`` as its ``sys.argv[1:]``; returns the JSON its last stdout line
    prints. For what only a new process shows: the modules a start imports."""
    import json

    clean = {k: v for k, v in os.environ.items() if not k.startswith("IA_CONTINU_")}
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**clean, **settings_env(settings), **env},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _popen(argv: list[str], env: dict[str, str], log: Any) -> subprocess.Popen:
    return subprocess.Popen(
        argv,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )
