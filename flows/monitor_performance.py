"""monitor_performance: metrics over 24 h and 7 d against seed 001's thresholds; a table
artifact every run; an alert and an event when the recent window crosses a threshold."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from flows.common import (
    PERFORMANCE_EVENT,
    alert_flow_failure,
    model_resource,
    settings_and_engine,
    state_key,
    swap_state,
)
from ia_continu import decide
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from notifications import Alert, Severity, notify

WINDOWS = {"24h": 24, "7d": 24 * 7}


@task(retries=2, retry_delay_seconds=5)
def window(hours: int) -> dict[str, Any]:
    from ia_continu.watch.quality import window_metrics

    settings, engine = settings_and_engine()
    with session_scope(engine) as session:
        return window_metrics(session, settings.family.value, hours)


@task
def publish_table(
    results: dict[str, dict[str, Any]], checks: dict[str, list[decide.ThresholdCheck]]
) -> None:
    rows = []
    for name, metrics in results.items():
        for check in checks[name]:
            rows.append(
                {
                    "window": name,
                    "metric": check.metric,
                    "value": None if check.value is None else round(check.value, 4),
                    "limit": f"{check.direction} {check.limit:g}",
                    "status": "CROSSED"
                    if check.crossed
                    else ("no data" if check.value is None else "ok"),
                    "predictions": metrics.get("count"),
                }
            )
    create_table_artifact(
        key="ia-continu-performance",
        table=rows,
        description="Performance over 24 h and 7 d vs seed 001's thresholds",
    )


@flow(name="monitor_performance", on_failure=[alert_flow_failure])
def monitor_performance(alert_window: str = "24h") -> dict[str, Any]:
    settings, engine = settings_and_engine()
    task_kind = get_family(settings.family).task
    results = {name: window(hours) for name, hours in WINDOWS.items()}
    checks = {
        name: decide.performance_checks(m, settings, task=task_kind) for name, m in results.items()
    }
    publish_table(results, checks)

    # Only the recent window alerts: the 7-day one is context, and would keep alerting for
    # a week after a problem is fixed.
    bad = decide.crossed(checks[alert_window])
    crossed_now = sorted(c.metric for c in bad)
    # One incident, one alert: alert when the set of crossed thresholds changes (and once on
    # recovery), not every hour while it stays the same. The set is kept between runs.
    previous = swap_state(
        state_key("performance", settings.database_url, settings.registered_model_name),
        crossed_now,
    )
    event_id, alerted = None, False
    if bad:
        with session_scope(engine) as session:
            version = registry.champion_version(session, settings.family.value)
        if crossed_now != (previous or []):
            text = "; ".join(c.describe() for c in bad)
            alerted = notify(
                Alert(
                    "Model performance below thresholds",
                    f"{alert_window}: {text}",
                    Severity.warning,
                    {"model_version": version, "predictions": results[alert_window].get("count")},
                    key=f"performance-{settings.family.value}",
                ),
                cooldown=0,
            )
        # The event goes out on every crossing run: automations may count or debounce them.
        event = emit_event(
            event=PERFORMANCE_EVENT,
            resource=model_resource(settings, version),
            payload={
                "window": alert_window,
                "crossed": crossed_now,
                "metrics": {c.metric: c.value for c in bad},
            },
        )
        event_id = str(event.id) if event else None
    elif previous:
        alerted = notify(
            Alert(
                "Model performance back within thresholds",
                f"{alert_window}: no threshold crossed (was: {', '.join(previous)})",
                Severity.info,
                key=f"performance-ok-{settings.family.value}",
            ),
            cooldown=0,
        )
    get_run_logger().info("performance: %d threshold(s) crossed", len(bad))
    return {
        "metrics": results,
        "crossed": crossed_now,
        "event_id": event_id,
        "alerted": alerted,
    }


if __name__ == "__main__":
    monitor_performance()
