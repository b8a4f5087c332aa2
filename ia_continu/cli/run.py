"""``ia-continu run``: the whole loop on one machine, on embedded defaults.

Children: the API (uvicorn), a Prefect server (UI on 4200), the flow server
(deployments/serve.py: prefect.yaml's schedules and triggers) and the MLflow UI (5000). With
no Discord URL configured, a local webhook receiver stands in for Discord and prints alerts
here. Each child writes to ``<data dir>/logs/<name>.log``; this terminal shows the addresses,
the alerts, and what stopped.

Stopping: Ctrl-C or SIGTERM stops every child (SIGTERM to its process group, a grace period,
then SIGKILL); if ``ia-continu run`` itself dies (SIGKILL, crash), the kernel sends each child
SIGTERM (PR_SET_PDEATHSIG), so no API or Prefect server is left holding its port.

Why not a process manager such as honcho: its ``Manager`` starts every process at once in
``loop()`` (the flow server must start only once the Prefect server answers), runs each
command through a shell under an intermediate Python process without a ``preexec_fn`` (no
PR_SET_PDEATHSIG, and one more process to orphan), kills after a fixed 5 s (the Prefect server
and MLflow need longer to stop cleanly), and multiplexes every child's output onto stdout
where per-child log files are wanted. The supervisor below is those four things, no more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ia_continu.config import Settings
    from notifications.receiver import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
ALERTS_PORT = 9011
STOP_GRACE_SECONDS = 15.0


def register(app: typer.Typer) -> None:
    app.command("run")(run)


class StartupFailed(RuntimeError):
    """A child exited or did not become ready: the message says which and where its log is."""


# --- children ----------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def exited(self) -> bool:
        return self.process.poll() is not None

    def ensure_running(self) -> None:
        if self.exited():
            raise StartupFailed(
                f"{self.name} exited ({self.process.returncode}): see {self.log_path}"
            )


def _die_with_parent() -> None:
    """In the child, before exec: if `ia-continu run` itself dies (SIGKILL, crash), the kernel
    sends this child SIGTERM, so no API or Prefect server is left orphaned on its port."""
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class Supervisor:
    """Starts children one by one, each in its own session with a log file; stops them all."""

    env: dict[str, str]
    logs: Path
    children: list[Child] = field(default_factory=list)
    _log_files: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> Child:
        log_path = self.logs / f"{name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - closed in stop_all
        self._log_files.append(log_file)
        # A session of its own: Ctrl-C reaches us only, and we stop the children in order; the
        # whole group is signalled, so grandchildren (Prefect's services, MLflow's workers) go
        # too.
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.exited()), None)

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every child's group (last started first), then SIGKILL after ``grace``."""
        for child in reversed(self.children):
            if not child.exited():
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                typer.echo(f"  {child.name} did not stop in {grace:.0f} s: killing it")
                _signal_group(child, signal.SIGKILL)
                child.process.wait(timeout=5)
            typer.echo(f"  stopped {child.name}")
        for log_file in self._log_files:
            log_file.close()


def _signal_group(child: Child, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signum)


# --- what to start -----------------------------------------------------------------------------


def _bin(name: str) -> str:
    # The venv's own executables: `ia-continu run` works without an activated venv.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


# The local loop judges a new version live, as a canary, so that `ia-continu demo` shows the
# whole path (gate, canary step, analysis, champion) in minutes: one step at 25 % then 100 %,
# no minimum step time, 100 outcomes per arm. Production keeps the settings' own defaults
# (direct); any of these set in the environment or .env wins.
LOCAL_LOOP_DEFAULTS = {
    "challenger_policy": "canary",
    "canary_steps": "[25, 100]",
    "challenger_min_step_minutes": "0",
    "challenger_min_labelled": "100",
}


def child_env(settings: Settings, prefect_api: str) -> dict[str, str]:
    local: dict[str, str] = {}
    if settings.environment != "production":
        local = {
            f"IA_CONTINU_{name.upper()}": value
            for name, value in LOCAL_LOOP_DEFAULTS.items()
            if name not in settings.model_fields_set
        }
    return {
        **local,
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


def api_command(settings: Settings) -> list[str]:
    return [
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
        # uvicorn would otherwise take the client address from X-Forwarded-For for any local
        # caller; the app decides from IA_CONTINU_TRUSTED_PROXIES instead.
        "--no-proxy-headers",
    ]


def prefect_server_command(port: int) -> list[str]:
    return [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]


def mlflow_ui_command(settings: Settings, port: int) -> list[str]:
    return [
        _bin("mlflow"),
        "ui",
        "--backend-store-uri",
        settings.mlflow_tracking_uri,
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        # One worker is plenty for a local UI; the default 4 cost memory and take up to ~15 s
        # to stop on SIGTERM.
        "--workers",
        "1",
    ]


def flows_command() -> list[str]:
    return [sys.executable, "-m", "deployments.serve"]


# --- readiness ---------------------------------------------------------------------------------


def _wait_http(url: str, timeout: float, child: Child) -> None:
    """Until ``url`` answers without a 5xx; StartupFailed if the child exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.ensure_running()
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise StartupFailed(
        f"{child.name} not healthy at {url} after {timeout:.0f} s: see {child.log_path}"
    )


def expected_deployments() -> tuple[list[str], list[str]]:
    """The deployment and trigger names prefect.yaml declares (what the flow server serves)."""
    from deployments.spec import declared_deployments

    declared = declared_deployments()
    return [d.name for d in declared], [t for d in declared for t in d.trigger_names]


def _registered(prefect_api: str, deployments: list[str], triggers: list[str]) -> bool:
    import httpx

    try:
        r = httpx.post(f"{prefect_api}/deployments/filter", json={}, timeout=5)
        # A trigger is an automation, created just after its deployment: wait for it too, or
        # an early drift event would find no one listening.
        a = httpx.post(f"{prefect_api}/automations/filter", json={}, timeout=5)
    except httpx.HTTPError:
        return False
    return (
        r.status_code == a.status_code == 200
        and set(deployments) <= {d["name"] for d in r.json()}
        and set(triggers) <= {x["name"] for x in a.json()}
    )


def wait_deployments(prefect_api: str, timeout: float, child: Child | None = None) -> None:
    """Until the flow server has registered every deployment and trigger (20-40 s when fresh)."""
    deployments, triggers = expected_deployments()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            child.ensure_running()
        if _registered(prefect_api, deployments, triggers):
            return
        time.sleep(1)
    raise StartupFailed(
        f"deployments not registered after {timeout:.0f} s"
        + (f": see {child.log_path}" if child else "")
    )


# --- local alerts ------------------------------------------------------------------------------


@dataclass
class LocalAlerts:
    """The local webhook receiver, and a thread printing each alert it gets."""

    receiver: WebhookReceiver
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, port: int) -> LocalAlerts:
        from notifications.receiver import WebhookReceiver

        alerts = cls(WebhookReceiver(port=port).start())
        threading.Thread(target=alerts._print_new, daemon=True, name="alert-printer").start()
        return alerts

    def _print_new(self) -> None:
        seen = 0
        while not self._stop.wait(0.5):
            embeds = self.receiver.embeds()
            for embed in embeds[seen:]:
                typer.secho(
                    f"[alert] {embed.get('title')}: {embed.get('description')}",
                    fg=typer.colors.YELLOW,
                )
            seen = len(embeds)

    def stop(self) -> None:
        self._stop.set()
        self.receiver.stop()


# --- the command -------------------------------------------------------------------------------


def prepare(settings: Settings) -> Path:
    """The data and log folders, the schema at head; the log folder."""
    from ia_continu.store import migrate as migrations
    from ia_continu.store.engine import make_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logs = settings.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    engine = make_engine(settings.database_url, connect_retries=10)
    migrations.upgrade(engine)
    engine.dispose()
    return logs


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM: the main loop then stops the children in order."""
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stopping


@dataclass(frozen=True, slots=True)
class Options:
    prefect: bool
    mlflow_ui: bool
    prefect_port: int
    mlflow_port: int

    @property
    def prefect_api(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"


def start_all(supervisor: Supervisor, settings: Settings, options: Options) -> None:
    """Start the children in order, each once what it needs answers; StartupFailed if not."""
    api = supervisor.start("api", api_command(settings))
    server = supervisor.start("prefect-server", prefect_server_command(options.prefect_port))
    if options.mlflow_ui:
        supervisor.start("mlflow-ui", mlflow_ui_command(settings, options.mlflow_port))
    _wait_http(f"{settings.api_url}/health", 90, api)
    typer.echo("waiting for the Prefect server (first start migrates its DB, ~30 s)...")
    _wait_http(f"{options.prefect_api}/health", 180, server)
    flows = supervisor.start("flows", flows_command())
    typer.echo("registering the deployments (about 40 s on a fresh server)...")
    wait_deployments(options.prefect_api, 240, flows)


def start_without_prefect(supervisor: Supervisor, settings: Settings, options: Options) -> None:
    api = supervisor.start("api", api_command(settings))
    if options.mlflow_ui:
        supervisor.start("mlflow-ui", mlflow_ui_command(settings, options.mlflow_port))
    _wait_http(f"{settings.api_url}/health", 90, api)


def print_banner(
    settings: Settings, options: Options, alerts: LocalAlerts | None, logs: Path
) -> None:
    typer.secho("\nia-continu is running", bold=True)
    typer.echo(f"  API           {settings.api_url}  (docs: {settings.api_url}/docs)")
    if options.prefect:
        typer.echo(f"  Prefect UI    http://127.0.0.1:{options.prefect_port}  (deployments, runs)")
    if options.mlflow_ui:
        typer.echo(f"  MLflow UI     http://127.0.0.1:{options.mlflow_port}")
    if alerts is not None:
        typer.echo(f"  Alerts        local receiver {alerts.receiver.url} (printed here)")
    typer.echo(f"  Logs          {logs}/")
    typer.echo("Try `ia-continu demo` in another terminal. Ctrl-C stops everything.\n")


def watch(supervisor: Supervisor, stopping: threading.Event) -> int:
    """Until a signal (exit code 0) or a child exits on its own (1)."""
    while not stopping.wait(1.0):
        dead = supervisor.first_exited()
        if dead is not None:
            typer.secho(
                f"{dead.name} exited with {dead.process.returncode}: see {dead.log_path}",
                fg=typer.colors.RED,
                err=True,
            )
            return 1
    return 0


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
    from ia_continu.config import Settings

    settings = Settings()
    options = Options(prefect, mlflow_ui, prefect_port, mlflow_port)
    logs = prepare(settings)
    supervisor = Supervisor(child_env(settings, options.prefect_api), logs)
    alerts = None
    if local_alerts and settings.discord_webhook_url is None:
        alerts = LocalAlerts.start(alerts_port)
        supervisor.env["IA_CONTINU_DISCORD_WEBHOOK_URL"] = alerts.receiver.url
    stopping = stop_on_signals()
    code = 0
    try:
        (start_all if prefect else start_without_prefect)(supervisor, settings, options)
        print_banner(settings, options, alerts, logs)
        code = watch(supervisor, stopping)
    except StartupFailed as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        code = 1
    finally:
        typer.echo("stopping...")
        supervisor.stop_all()
        if alerts is not None:
            alerts.stop()
    raise typer.Exit(code)
