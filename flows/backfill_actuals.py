"""backfill_actuals: predictions without an outcome -> ground-truth source -> record_actuals."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from flows.common import alert_flow_failure, settings_and_engine
from ia_continu.store.engine import session_scope
from ia_continu.truth import sources
from ia_continu.truth.actuals import record_actuals


@task
def find_pending(max_age_hours: int, limit: int) -> list[str]:
    settings, engine = settings_and_engine()
    with session_scope(engine) as session:
        return sources.pending_request_ids(
            session, settings.family.value, max_age_hours=max_age_hours, limit=limit
        )


@task(retries=3, retry_delay_seconds=[5, 20, 60])
def fetch_outcomes(source_name: str, request_ids: list[str]) -> dict[str, float]:
    # The source is the outside world (a bookings DB, a label queue): it is what gets retried.
    _, engine = settings_and_engine()
    source = sources.get_source(source_name)
    with session_scope(engine) as session:
        return source.fetch(session, request_ids)


@task
def write_actuals(outcomes: dict[str, float]) -> dict[str, Any]:
    settings, engine = settings_and_engine()
    items = [{"request_id": rid, "actual": value} for rid, value in outcomes.items()]
    with session_scope(engine) as session:
        return record_actuals(session, settings, items)


@flow(name="backfill_actuals", on_failure=[alert_flow_failure])
def backfill_actuals(
    source: str = "synthetic", max_age_hours: int = 24 * 7, limit: int = 50_000
) -> dict[str, Any]:
    pending = find_pending(max_age_hours, limit)
    outcomes = fetch_outcomes(source, pending) if pending else {}
    written = write_actuals(outcomes) if outcomes else {"updated": 0}
    summary = {
        "pending": len(pending),
        "found": len(outcomes),
        "updated": int(written.get("updated", 0)),
    }
    get_run_logger().info("backfill: %s", summary)
    return summary


if __name__ == "__main__":
    backfill_actuals()
