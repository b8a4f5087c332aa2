"""``ia-continu demo``: drive the running loop (``ia-continu run``) through one full cycle.

generate + train a champion -> clean traffic -> actuals arrive (backfill) -> drifted traffic
-> detect_drift (deployment) -> the drift event triggers the retrain deployment -> the gate
decides -> alerts arrive at the local webhook receiver. Prints what happened at each step.

Under a live challenger policy (``IA_CONTINU_CHALLENGER_POLICY=canary``, read from the API),
the version that passes the gate goes live as a canary instead of becoming champion, and the
demo follows it: rounds of drifted traffic reach both arms, their outcomes are backfilled,
the analyze-challenger deployment judges the arm, and each step is printed (both arms'
figures, the test's p-value, the verdict, the new share) until it is champion or aborted.

Run it from the same directory (and with the same IA_CONTINU_* settings) as ``ia-continu run``:
it writes the synthetic world's outcomes straight into the same database.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ia_continu.cli.challenger import share
from ia_continu.cli.run import ALERTS_PORT, wait_deployments
from ia_continu.vocab import ModelEventKind

# What the retrain flow records when it has decided, whichever way (a version that passed
# the gate under a live policy starts a challenger arm instead of being promoted).
DECISIONS = (
    ModelEventKind.promote,
    ModelEventKind.reject,
    ModelEventKind.retrain_skipped,
    ModelEventKind.failed,
    ModelEventKind.challenger_started,
)
# The analysis' steps of a live challenger, and the two that end it.
STEPS = (
    ModelEventKind.challenger_advanced,
    ModelEventKind.challenger_held,
    ModelEventKind.challenger_aborted,
    ModelEventKind.challenger_promoted,
)
ENDS = (ModelEventKind.challenger_aborted, ModelEventKind.challenger_promoted)
CANARY_BATCH = 20  # rows per /predict/batch call while a challenger is live

if TYPE_CHECKING:  # the command imports the heavy stack only when it runs
    import httpx
    from sqlalchemy import Engine

    from ia_continu.config import Settings
    from ia_continu.store.tables import ModelEvent


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


def _run_deployment(
    name: str, timeout: float, parameters: dict[str, Any] | None = None
) -> tuple[str, str]:
    """Run a deployment (``flow/deployment``) and wait for it: its run's name and final state."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    run = run_deployment(name, timeout=timeout, parameters=parameters)
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
    canary_traffic: Annotated[
        int, typer.Option(help="requests per round while a challenger is live")
    ] = 800,
    canary_timeout: Annotated[
        float, typer.Option(help="seconds to follow a live challenger before giving up")
    ] = 240.0,
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
    if outcome.event == ModelEventKind.challenger_started:
        follow_challenger(
            settings,
            engine,
            http,
            outcome.id,
            rows=canary_traffic,
            drift=drift,
            outcome_delay=outcome_delay,
            timeout=canary_timeout,
        )

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


def _challenger(http: httpx.Client) -> dict[str, Any]:
    r = http.get("/challenger")
    r.raise_for_status()
    result: dict[str, Any] = r.json()
    return result


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def render_step(event: ModelEvent) -> list[str]:
    """One audited step of the analysis: both arms side by side, the test, the verdict."""
    m = event.metrics or {}
    kind = str(event.event).removeprefix("challenger_")
    where = "shadow" if m.get("mode") == "shadow" else f"canary {m.get('percentage', 0):g}%"
    if event.event == ModelEventKind.challenger_promoted:
        where = "champion"
    elif event.event == ModelEventKind.challenger_aborted:
        where = "cleared"
    lines = [f"  {kind.upper()} -> {where}: {event.reason}"]
    if m.get("champion_labelled") is not None:
        metric = str(m.get("metric", "metric"))
        lines += [
            f"      {'':<10}{'champion':>10}{'challenger':>12}",
            f"      {'version':<10}{event.previous_version or '-':>10}{event.version:>12}",
            f"      {'labelled':<10}{m.get('champion_labelled'):>10}"
            f"{m.get('challenger_labelled'):>12}",
            f"      {metric:<10}{_fmt(m.get('champion_metric')):>10}"
            f"{_fmt(m.get('challenger_metric')):>12}",
        ]
        if m.get("test"):
            lines.append(
                f"      {m['test']}: difference {_fmt(m.get('difference'), '+.3g')}, "
                f"p={_fmt(m.get('p_value'), '.3g')}, "
                f"p(not worse)={_fmt(m.get('p_not_worse'), '.3g')}, "
                f"sequential p={_fmt(m.get('p_sequential'), '.3g')}"
            )
    return lines


def _new_steps(engine: Engine, family: str, after: int, wait: float) -> list[ModelEvent]:
    """The analysis' audit rows after id ``after``, waiting up to ``wait`` s for one."""
    from sqlalchemy import select

    from ia_continu.store.engine import session_scope
    from ia_continu.store.tables import ModelEvent

    deadline = time.monotonic() + wait
    while True:
        with session_scope(engine) as session:
            events = list(
                session.scalars(
                    select(ModelEvent)
                    .where(
                        ModelEvent.id > after,
                        ModelEvent.family == family,
                        ModelEvent.event.in_([str(k) for k in STEPS]),
                    )
                    .order_by(ModelEvent.id)
                )
            )
        if events or time.monotonic() >= deadline:
            return events
        time.sleep(1)


def follow_challenger(
    settings: Settings,
    engine: Engine,
    http: httpx.Client,
    since_event: int,
    *,
    rows: int,
    drift: float,
    outcome_delay: float,
    timeout: float,
) -> None:
    """Rounds of traffic, outcomes and analysis until the live challenger is champion or
    aborted, printing every step the analysis takes (and its numbers)."""
    from ia_continu.sim import simulate_traffic

    status = _challenger(http)
    policy, arm = status["policy"], status["active"]
    if arm is None:
        typer.echo("the challenger is no longer live (see `ia-continu challenger status`)")
        return
    steps = " -> ".join(f"{s:g}%" for s in policy["steps"])
    _step(
        f"Challenger v{arm['version']} is live against champion v{arm['champion_version']}: "
        f"policy {policy['name']} (steps {steps}, {policy['min_labelled']} outcomes per arm, "
        f"alpha {policy['alpha']:g}); {share(arm)}"
    )
    if policy["min_step_minutes"] > 1:
        typer.echo(
            f"each step lasts at least {policy['min_step_minutes']:g} min: start `ia-continu run`"
            " with IA_CONTINU_CHALLENGER_MIN_STEP_MINUTES=0 to watch the whole ramp now"
        )
    # This process serves the arm within a champion poll (GET /challenger says so).
    deadline = time.monotonic() + 30
    while status["served_challenger"] != arm["version"] and time.monotonic() < deadline:
        time.sleep(0.5)
        status = _challenger(http)
    time.sleep(settings.champion_poll_seconds + 1)  # every replica, too

    ended = None
    last = since_event
    deadline = time.monotonic() + timeout
    round_ = 0
    while ended is None and time.monotonic() < deadline:
        round_ += 1
        active = status["active"]
        _step(
            f"Round {round_}: {rows} requests from the drifted world "
            f"({share(active)} answered by the challenger)"
        )
        # In small calls, as clients send them: the latency guardrail compares the arms'
        # mean time per row, and one call's hiccup on a busy machine must not decide it.
        simulate_traffic(
            settings,
            engine,
            http,
            rows,
            drift=drift,
            delay_seconds=outcome_delay,
            batch_size=CANARY_BATCH,
        )
        time.sleep(outcome_delay + 1)
        run, state = _run_deployment("backfill_every_model/backfill-actuals", timeout=120)
        typer.echo(f"backfill run {run}: {state}")
        # The outcomes it wrote are an event that starts analyze-challenger by itself; run
        # it by hand only if no step shows up meanwhile.
        events = _new_steps(engine, settings.family, last, wait=45)
        if events:
            typer.echo("the outcomes event started analyze-challenger")
        else:
            run, state = _run_deployment(
                "analyze_challenger/analyze-challenger",
                timeout=120,
                parameters={"model": settings.family},
            )
            typer.echo(f"analyze_challenger run {run}: {state}")
            events = _new_steps(engine, settings.family, last, wait=0)
        for event in events:
            last = event.id
            typer.echo("\n".join(render_step(event)))
            if event.event in ENDS:
                ended = event
        status = _challenger(http)
        if ended is None and status["active"] is None:
            break  # ended outside the analysis (an operator, a newer retrain)
        time.sleep(settings.champion_poll_seconds + 1)  # every replica serves the new share
    if ended is None:
        typer.secho(
            f"the challenger is still live after {timeout:.0f} s: "
            "see `ia-continu challenger status` and the dashboard",
            fg=typer.colors.YELLOW,
        )
        return
    typer.echo(
        f"audit: {ended.event} version {ended.version}; champion is now "
        f"{status['champion_version']}"
    )
