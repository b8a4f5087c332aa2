"""``ia-continu demo``: drive the running loop (``ia-continu run``) through one full cycle.

generate + train a champion -> clean traffic -> actuals arrive (backfill) -> drifted traffic
-> detect_drift (deployment) -> the drift event triggers the retrain deployment -> the gate
decides -> alerts arrive at the local webhook receiver. Prints what happened at each step.
Run it from the same directory (and with the same IA_CONTINU_* settings) as ``ia-continu run``:
it writes the synthetic world's outcomes straight into the same database.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import typer

from ia_continu.cli.run import ALERTS_PORT, wait_deployments
from ia_continu.vocab import ModelEventKind

# What the retrain flow records when it has decided, whichever way.
DECISIONS = (
    ModelEventKind.promote,
    ModelEventKind.reject,
    ModelEventKind.retrain_skipped,
    ModelEventKind.failed,
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def _step(text: str) -> None:
    typer.secho(f"\n==> {text}", bold=True)


def _alerts(url: str) -> list[dict[str, Any]] | None:
    import httpx

    try:
        payloads = httpx.get(url, timeout=5).json()
    except Exception:
        return None
    return [e for p in payloads if isinstance(p, dict) for e in p.get("embeds", [])]


def _run_deployment(name: str, timeout: float) -> tuple[str, str]:
    """Run a deployment (``flow/deployment``) and wait for it: its run's name and final state."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    run = run_deployment(name, timeout=timeout)
    if not isinstance(run, FlowRun):  # an awaitable, from an event loop
        raise TypeError("run the demo outside of an event loop")
    return run.name, (run.state.name if run.state else None) or "unknown"


def demo(
    prefect_api_url: Annotated[str, typer.Option(help="the Prefect server's API")] = (
        "http://127.0.0.1:4200/api"
    ),
    alerts_url: Annotated[str, typer.Option(help="the local alert receiver of `run`")] = (
        f"http://127.0.0.1:{ALERTS_PORT}/webhook"
    ),
    clean_traffic: int = 500,
    drift_traffic: int = 2000,
    drift: Annotated[float, typer.Option(help="shift of the drifted world")] = 3.0,
    outcome_delay: Annotated[float, typer.Option(help="seconds until outcomes are known")] = 5.0,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the triggered retrain")] = (
        240.0
    ),
) -> None:
    """One full cycle of the loop against the running system (about 2 minutes)."""
    os.environ.setdefault("PREFECT_API_URL", prefect_api_url)
    import httpx
    from sqlalchemy import func, select

    from ia_continu.config import Settings
    from ia_continu.sim import simulate_traffic
    from ia_continu.store.engine import make_engine, session_scope
    from ia_continu.store.tables import DriftReport, ModelEvent, PredictionLog

    started = time.monotonic()
    settings = Settings()
    engine = make_engine(settings.database_url)
    admin = {"X-API-Key": settings.effective_api_key}
    http = httpx.Client(base_url=settings.api_url, timeout=60)
    alerts_before = len(_alerts(alerts_url) or [])

    _step(f"API at {settings.api_url}")
    try:
        health = http.get("/health").json()
    except httpx.HTTPError as exc:
        typer.secho(
            f"the API is not answering ({exc}): start `ia-continu run` first",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"status {health['status']}, champion {health['champion_version']}")
    try:
        wait_deployments(prefect_api_url, 120)
    except RuntimeError as exc:
        typer.secho(f"Prefect at {prefect_api_url}: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None

    _step("Generate a clean dataset and train a champion (POST /generate, /retrain)")
    r = http.post("/generate", json={"samples": 2000, "drift": False}, headers=admin)
    r.raise_for_status()
    r = http.post("/retrain", json={"reason": "demo: initial champion"}, headers=admin)
    r.raise_for_status()
    trained = r.json()
    typer.echo(
        f"version {trained['model_version']} {trained['status']} ({trained['reason']});"
        f" champion is {trained['champion_version']}"
    )
    time.sleep(settings.champion_poll_seconds + 1)  # every replica serves it now

    _step(f"Send {clean_traffic} requests from the clean world (POST /predict/batch)")
    simulate_traffic(settings, engine, http, clean_traffic, delay_seconds=outcome_delay)
    _step(f"Send {drift_traffic} requests from a drifted world (feature shift {drift})")
    simulate_traffic(
        settings, engine, http, drift_traffic, drift=drift, delay_seconds=outcome_delay
    )

    _step(f"Wait {outcome_delay:.0f} s for the outcomes, then run backfill_actuals")
    time.sleep(outcome_delay + 2)
    run, state = _run_deployment("backfill_every_model/backfill-actuals", timeout=120)
    with session_scope(engine) as session:
        labelled = session.scalar(
            select(func.count()).select_from(PredictionLog).where(PredictionLog.actual.is_not(None))
        )
    typer.echo(f"backfill run {run}: {state}; {labelled} predictions have actuals")

    run, state = _run_deployment("monitor_every_model/monitor-performance", timeout=120)
    typer.echo(f"monitor_performance run {run}: {state}")

    with session_scope(engine) as session:
        last_event = session.scalar(select(func.max(ModelEvent.id))) or 0
    _step("Run detect_drift (Evidently) through its deployment")
    run, state = _run_deployment("detect_drift_every_model/detect-drift", timeout=180)
    with session_scope(engine) as session:
        report = session.scalars(select(DriftReport).order_by(DriftReport.id.desc())).first()
    if report is None:
        typer.secho(f"detect_drift ({state}) wrote no report", fg=typer.colors.RED)
        raise typer.Exit(1)
    typer.echo(
        f"run {run}: {state}; dataset drift {report.dataset_drift}, "
        f"drifted {report.drifted_features} (share {report.drift_share:.2f}); "
        f"report {report.report_path}"
    )
    if not report.dataset_drift:
        typer.echo("no drift, so no event: try a larger --drift")
        raise typer.Exit(1)

    _step("The drift event triggers the retrain deployment; waiting for its decision")
    deadline = time.monotonic() + timeout
    outcome = None
    while time.monotonic() < deadline and outcome is None:
        time.sleep(3)
        with session_scope(engine) as session:
            outcome = session.scalars(
                select(ModelEvent)
                .where(
                    ModelEvent.id > last_event,
                    ModelEvent.event.in_(DECISIONS),
                )
                .order_by(ModelEvent.id)
            ).first()
    if outcome is None:
        typer.secho(
            f"no retrain decision within {timeout:.0f} s: see the Prefect UI and "
            f"{settings.data_dir / 'logs' / 'flows.log'}",
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)
    typer.echo(f"audit: {outcome.event} version {outcome.version}: {outcome.reason}")

    _step("Alerts")
    time.sleep(2)
    alerts = _alerts(alerts_url)
    if alerts is None:
        typer.echo("no local receiver answered: alerts went to Discord (or to the log)")
    else:
        for embed in alerts[alerts_before:]:
            typer.echo(
                f"  [{embed.get('footer', {}).get('text', '')}] {embed.get('title')}: "
                f"{embed.get('description')}"
            )
    typer.secho(f"\ndemo finished in {time.monotonic() - started:.0f} s", bold=True)
