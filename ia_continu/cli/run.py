"""``ia-continu run``: the whole loop on one machine, on embedded defaults.

Children: the API (uvicorn), a Prefect server (UI on 4200), the flow server
(deployments/serve.py: schedules and the drift trigger) and the MLflow UI (5000). With no
Discord URL configured, a local webhook receiver stands in for Discord and prints alerts here.
Ctrl-C or SIGTERM stops every child: SIGTERM to its process group, a grace period, then KILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

ROOT = Path(__file__).resolve().parents[2]
ALERTS_PORT = 9011


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def _bin(name: str) -> str:
    # The venv's own executables: `ia-continu run` works without an activated venv.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _start(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Child:
    log_path = logs / f"{name}.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
    # A session of its own: Ctrl-C reaches us only, and we stop the children in order; the
    # whole group is signalled, so grandchildren (Prefect's services, MLflow's workers) go too.
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    return Child(name, process, log_path)


def _die_with_parent() -> None:
    """In the child, before exec: if `ia-continu run` itself dies (SIGKILL, crash), the kernel
    sends this child SIGTERM, so no API or Prefect server is left orphaned on its port."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(children: list[Child], grace: float = 15.0) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in reversed(children):
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            typer.echo(f"  {child.name} did not stop in {grace:.0f} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait(timeout=5)
        typer.echo(f"  stopped {child.name}")


def _wait_http(url: str, timeout: float, child: Child) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited ({child.process.returncode}): see {child.log_path}"
            )
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(
        f"{child.name} not healthy at {url} after {timeout:.0f} s: see {child.log_path}"
    )


TRIGGERS = ("retrain-on-drift",)
DEPLOYMENTS = ("health-check", "backfill-actuals", "monitor-performance", "detect-drift", "retrain")


def wait_deployments(prefect_api: str, timeout: float, child: Child | None = None) -> None:
    """Until the flow server has registered every deployment and trigger (20-40 s when fresh)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None and child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited ({child.process.returncode}): see {child.log_path}"
            )
        try:
            r = httpx.post(f"{prefect_api}/deployments/filter", json={}, timeout=5)
            # The trigger is an automation, created just after its deployment: wait for it
            # too, or an early drift event would find no one listening.
            a = httpx.post(f"{prefect_api}/automations/filter", json={}, timeout=5)
            if (
                r.status_code == a.status_code == 200
                and set(DEPLOYMENTS) <= {d["name"] for d in r.json()}
                and set(TRIGGERS) <= {x["name"] for x in a.json()}
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(
        f"deployments not registered after {timeout:.0f} s"
        + (f": see {child.log_path}" if child else "")
    )


def _print_alerts(receiver, stop: threading.Event) -> None:
    seen = 0
    while not stop.wait(0.5):
        embeds = receiver.embeds()
        for embed in embeds[seen:]:
            typer.secho(
                f"[alert] {embed.get('title')}: {embed.get('description')}", fg=typer.colors.YELLOW
            )
        seen = len(embeds)


def run(
    prefect: Annotated[bool, typer.Option(help="start the Prefect server and the flows")] = True,
    mlflow_ui: Annotated[bool, typer.Option(help="start the MLflow UI")] = True,
    local_alerts: Annotated[
        bool,
        typer.Option(
            help="without a Discord URL, receive alerts on a local webhook and print them"
        ),
    ] = True,
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    alerts_port: int = ALERTS_PORT,
) -> None:
    """Start the API, Prefect (server + flows), the MLflow UI; stop them all on Ctrl-C."""
    from ia_continu.config import get_settings
    from ia_continu.store import migrate as migrations
    from ia_continu.store.engine import make_engine

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    engine = make_engine(settings.database_url, connect_retries=10)
    migrations.upgrade(engine)
    engine.dispose()

    prefect_api = f"http://127.0.0.1:{prefect_port}/api"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        # Absolute, so every child agrees whatever its working directory.
        "IA_CONTINU_DATA_DIR": str(settings.data_dir),
        "IA_CONTINU_DATABASE_URL": settings.database_url,
        "IA_CONTINU_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PREFECT_HOME": str(settings.data_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": prefect_api,
    }

    receiver, stop_printing = None, threading.Event()
    if local_alerts and settings.discord_webhook_url is None:
        from notifications.receiver import WebhookReceiver

        receiver = WebhookReceiver(port=alerts_port).start()
        env["IA_CONTINU_DISCORD_WEBHOOK_URL"] = receiver.url
        threading.Thread(target=_print_alerts, args=(receiver, stop_printing), daemon=True).start()

    stopping = threading.Event()

    def on_signal(signum, _frame) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children: list[Child] = []
    code = 0
    try:
        api = _start(
            "api",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                settings.host,
                "--port",
                str(settings.port),
                "--loop",
                "asyncio",
                # uvicorn would otherwise take the client address from X-Forwarded-For for
                # any local caller; the app decides from IA_CONTINU_TRUSTED_PROXIES instead.
                "--no-proxy-headers",
            ],
            env,
            logs,
        )
        children.append(api)
        if prefect:
            server = _start(
                "prefect-server",
                [
                    _bin("prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                ],
                env,
                logs,
            )
            children.append(server)
        if mlflow_ui:
            children.append(
                _start(
                    "mlflow-ui",
                    [
                        _bin("mlflow"),
                        "ui",
                        "--backend-store-uri",
                        settings.mlflow_tracking_uri,
                        "--port",
                        str(mlflow_port),
                        "--host",
                        "127.0.0.1",
                        # One worker is plenty for a local UI; the default 4 cost memory
                        # and take up to ~15 s to stop on SIGTERM.
                        "--workers",
                        "1",
                    ],
                    env,
                    logs,
                )
            )
        _wait_http(f"{settings.api_url}/health", 90, api)
        if prefect:
            typer.echo("waiting for the Prefect server (first start migrates its DB, ~30 s)...")
            _wait_http(f"{prefect_api}/health", 180, server)
            flows = _start("flows", [sys.executable, "-m", "deployments.serve"], env, logs)
            children.append(flows)
            typer.echo("registering the deployments (about 40 s on a fresh server)...")
            wait_deployments(prefect_api, 240, flows)

        typer.secho("\nia-continu is running", bold=True)
        typer.echo(f"  API           {settings.api_url}  (docs: {settings.api_url}/docs)")
        if prefect:
            typer.echo(f"  Prefect UI    http://127.0.0.1:{prefect_port}  (deployments, runs)")
        if mlflow_ui:
            typer.echo(f"  MLflow UI     http://127.0.0.1:{mlflow_port}")
        if receiver is not None:
            typer.echo(f"  Alerts        local receiver {receiver.url} (printed here)")
        typer.echo(f"  Logs          {logs}/")
        typer.echo("Try `ia-continu demo` in another terminal. Ctrl-C stops everything.\n")

        while not stopping.wait(1.0):
            dead = [c for c in children if c.process.poll() is not None]
            if dead:
                for c in dead:
                    typer.secho(
                        f"{c.name} exited with {c.process.returncode}: see {c.log_path}",
                        fg=typer.colors.RED,
                        err=True,
                    )
                code = 1
                break
    except RuntimeError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        code = 1
    finally:
        typer.echo("stopping...")
        _stop(children)
        stop_printing.set()
        if receiver is not None:
            receiver.stop()
    raise typer.Exit(code)
