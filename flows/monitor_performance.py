"""monitor_performance: one model's metrics over 24 h and 7 d against its performance
thresholds (the settings', or its declaration's: accuracy, latency, and for regression MAE,
R², RMSE); a table artifact every run; an alert and an event when the recent window crosses
a threshold. When the champion stays past its retrain limit over every recent window
(``ia_continu.decide.sustained_degradation``), ``LoopEvent.degradation_sustained`` goes out
once per incident: the retrain deployment's trigger listens for it. ``monitor_every_model``
(the hourly deployment) runs it for every model with a champion (flows/common.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from sqlalchemy import Engine

from flows.common import (
    alert_flow_failure,
    artifact_key,
    for_each_model,
    model_resource,
    model_view,
    plain,
    run_engine,
    state_key,
    swap_state,
)
from ia_continu import decide
from ia_continu.config import Settings
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.vocab import LoopEvent
from notifications import Alert, Severity, notify

if TYPE_CHECKING:
    from ia_continu.watch.quality import WindowMetrics

WINDOWS = {"24h": 24, "7d": 24 * 7}


@dataclass(frozen=True, slots=True)
class WindowReport:
    """One window's figures and each threshold's verdict on them."""

    name: str
    metrics: WindowMetrics
    checks: list[decide.ThresholdCheck]

    @property
    def crossed(self) -> list[decide.ThresholdCheck]:
        return decide.crossed(self.checks)


@task(retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def window(settings: Settings, engine: Engine, name: str, hours: int) -> WindowReport:
    from ia_continu.watch.quality import window_metrics

    with session_scope(engine) as session:
        metrics = window_metrics(session, settings.family, hours)
    rules = get_family(settings.family, settings).rules
    return WindowReport(name, metrics, decide.performance_checks(metrics, settings, rules=rules))


def table_rows(reports: list[WindowReport]) -> list[dict[str, Any]]:
    return [
        {
            "window": report.name,
            "metric": check.metric,
            "value": None if check.value is None else round(check.value, 4),
            "limit": f"{check.direction} {check.limit:g}",
            "status": "CROSSED" if check.crossed else ("no data" if check.value is None else "ok"),
            "predictions": report.metrics.count,
        }
        for report in reports
        for check in report.checks
    ]


@task
def publish_table(model: str, reports: list[WindowReport]) -> None:
    create_table_artifact(
        key=artifact_key("ia-continu-performance", model),
        table=table_rows(reports),
        description=f"{model}: performance over 24 h and 7 d vs the alert thresholds",
    )


@task(cache_policy=NO_CACHE)
def estimate(settings: Settings, engine: Engine, hours: int) -> dict[str, Any] | None:
    """The window's estimated metric beside the realised one (CBPE or DLE, per version), kept
    in ``performance_estimates`` and shown as a table artifact. Estimates are context, never
    a reason for this flow to fail: None (with a warning) when they cannot be computed."""
    from ia_continu.watch.estimates import estimate_recent, record_estimates

    try:
        with session_scope(engine) as session:
            found = estimate_recent(session, settings, hours)
            record_estimates(session, found)
    except Exception as exc:
        get_run_logger().warning("no performance estimate this run: %s", exc)
        return None
    create_table_artifact(
        key=artifact_key("ia-continu-estimates", settings.family),
        table=[
            {
                "version": v.model_version,
                "method": v.method or "unavailable",
                "metric": found.metric,
                "rows": v.rows,
                "waiting": v.pending_rows,
                "estimated": _rounded(v.estimated),
                "estimated (waiting)": _rounded(v.estimated_pending),
                "realised": _rounded(v.realised),
                "estimation error": _rounded(v.estimation_error),
            }
            for v in found.versions
        ],
        description=f"{settings.family}: {found.metric} estimated before outcomes, "
        f"beside the realised one, over {hours} h",
    )
    return found.model_dump()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def degraded_alert(settings: Settings, report: WindowReport, version: str | None) -> Alert:
    return Alert(
        f"Model performance below thresholds ({settings.family})",
        f"{report.name}: " + "; ".join(c.describe() for c in report.crossed),
        Severity.warning,
        {"model": settings.family, "model_version": version, "predictions": report.metrics.count},
        key=f"performance-{settings.family}",
    )


def recovered_alert(settings: Settings, report: WindowReport, previous: list[str]) -> Alert:
    return Alert(
        f"Model performance back within thresholds ({settings.family})",
        f"{report.name}: no threshold crossed (was: {', '.join(previous)})",
        Severity.info,
        {"model": settings.family},
        key=f"performance-ok-{settings.family}",
    )


@task(cache_policy=NO_CACHE)
def sustained(settings: Settings, engine: Engine, version: str | None) -> list[str] | None:
    """What the champion crossed in each recent window, when it crossed its retrain limit in
    all of them; else None. Each window's verdict is a table artifact."""
    from ia_continu.watch.degradation import recent_windows

    family = get_family(settings.family, settings)
    with session_scope(engine) as session:
        windows = recent_windows(session, settings, family, version)
    bad, verdicts = decide.sustained_degradation(windows, settings, family.rules)
    create_table_artifact(
        key=artifact_key("ia-continu-degradation", settings.family),
        table=[
            {
                "window start": v.start,
                "judged on": v.source,
                "outcomes": v.labelled,
                "crossed": " and ".join(v.crossed) or "-",
            }
            for v in verdicts
        ],
        description=f"{settings.family}: the champion ({version}) over the last "
        f"{settings.degradation_windows} windows of {settings.degradation_window_hours:g} h; "
        "a retrain limit crossed in all of them retrains",
    )
    return [" and ".join(v.crossed) for v in verdicts] if bad else None


def announce_sustained(
    settings: Settings, version: str | None, crossed: list[str] | None
) -> str | None:
    """The event that starts a retrain, once per champion and incident (a retrain the gate
    rejects is not started again every hour; the weekly one still decides); its id."""
    key = state_key("sustained", settings.database_url, settings.registered_model_name)
    # The state kept is the champion found degraded: None once it recovers.
    if crossed is None:
        swap_state(key, None)
        return None
    if swap_state(key, version) == version:
        return None  # the same incident, already announced
    event = emit_event(
        event=LoopEvent.degradation_sustained,
        resource=model_resource(settings, version),
        payload={
            "windows": len(crossed),
            "window_hours": settings.degradation_window_hours,
            "crossed": crossed,
            "model_version": version,
        },
    )
    return str(event.id) if event else None


@flow(name="monitor_performance", on_failure=[alert_flow_failure])
def monitor_performance(alert_window: str = "24h", model: str | None = None) -> dict[str, Any]:
    """Watch ``model`` (None: the default model)."""
    settings = model_view(model)
    with run_engine(settings) as engine:
        # The MLflow alias follows the DB (the source of truth): set again here if a crash
        # between the two left them apart, so that API replicas never need MLflow for it.
        registry.reconcile_alias(engine, settings)
        reports = [window(settings, engine, name, hours) for name, hours in WINDOWS.items()]
        estimated = estimate(settings, engine, WINDOWS[alert_window])
        with session_scope(engine) as session:
            version = registry.champion_version(session, settings.family)
        streak = sustained(settings, engine, version)
    publish_table(settings.family, reports)

    # Only the recent window alerts: the 7-day one is context, and would keep alerting for
    # a week after a problem is fixed.
    (recent,) = [r for r in reports if r.name == alert_window]
    crossed_now = sorted(c.metric for c in recent.crossed)
    # One incident, one alert: alert when the set of crossed thresholds changes (and once on
    # recovery), not every hour while it stays the same. The set is kept between runs.
    previous = swap_state(
        state_key("performance", settings.database_url, settings.registered_model_name),
        crossed_now,
    )
    event_id, alerted = None, False
    if crossed_now:
        if crossed_now != (previous or []):
            alerted = notify(degraded_alert(settings, recent, version), settings, cooldown=0)
        # The event goes out on every crossing run: automations may count or debounce them.
        event = emit_event(
            event=LoopEvent.performance_degraded,
            resource=model_resource(settings, version),
            payload={
                "window": recent.name,
                "crossed": crossed_now,
                "metrics": {c.metric: c.value for c in recent.crossed},
            },
        )
        event_id = str(event.id) if event else None
    elif previous:
        alerted = notify(recovered_alert(settings, recent, previous), settings, cooldown=0)
    sustained_event = announce_sustained(settings, version, streak)
    get_run_logger().info("performance: %d threshold(s) crossed", len(crossed_now))
    return {
        "metrics": {r.name: plain(r.metrics) for r in reports},
        "crossed": crossed_now,
        "event_id": event_id,
        "alerted": alerted,
        "estimates": estimated,
        "sustained": streak,
        "sustained_event_id": sustained_event,
    }


@flow(name="monitor_every_model", on_failure=[alert_flow_failure])
def monitor_every_model(
    models: list[str] | None = None, alert_window: str = "24h"
) -> dict[str, Any]:
    """monitor_performance for each model (None: every declared model with a champion)."""
    return for_each_model(
        models, lambda name: monitor_performance(alert_window, model=name, return_state=True)
    )


if __name__ == "__main__":
    monitor_performance()
