"""backfill_actuals: one model's predictions without an outcome -> ground-truth source ->
record_actuals. ``backfill_every_model`` (the hourly deployment) runs it for every model
with a champion (flows/common.py). A run that wrote outcomes emits
``LoopEvent.outcomes_recorded`` about the model: the live analysis of a challenger
(flows/analyze_challenger.py) is started by it, since new outcomes are what it waits for."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from sqlalchemy import Engine

from flows.common import (
    alert_flow_failure,
    for_each_model,
    model_resource,
    model_view,
    run_engine,
)
from ia_continu.config import Settings
from ia_continu.store.engine import session_scope
from ia_continu.truth import sources
from ia_continu.truth.actuals import record_actuals
from ia_continu.vocab import LoopEvent


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    pending: int  # predictions waiting for an outcome
    found: int  # outcomes the source knows now
    updated: int  # predictions that got theirs


@task(cache_policy=NO_CACHE)
def find_pending(settings: Settings, engine: Engine, max_age_hours: int, limit: int) -> list[str]:
    with session_scope(engine) as session:
        return sources.pending_request_ids(
            session, settings.family, max_age_hours=max_age_hours, limit=limit
        )


@task(retries=3, retry_delay_seconds=[5, 20, 60], cache_policy=NO_CACHE)
def fetch_outcomes(engine: Engine, source_name: str, request_ids: list[str]) -> dict[str, float]:
    # The source is the outside world (a bookings DB, a label queue): it is what gets retried.
    source = sources.get_source(source_name)
    with session_scope(engine) as session:
        return source.fetch(session, request_ids)


@task(cache_policy=NO_CACHE)
def write_actuals(settings: Settings, engine: Engine, outcomes: dict[str, float]) -> int:
    """The number of predictions updated."""
    items = [{"request_id": rid, "actual": value} for rid, value in outcomes.items()]
    with session_scope(engine) as session:
        written = record_actuals(session, settings, items)
    return written.updated


@flow(name="backfill_actuals", on_failure=[alert_flow_failure])
def backfill_actuals(
    source: str = "synthetic",
    max_age_hours: int = 24 * 7,
    limit: int = 50_000,
    model: str | None = None,
) -> dict[str, Any]:
    """Outcomes for ``model``'s predictions (None: the default model)."""
    settings = model_view(model)
    with run_engine(settings) as engine:
        pending = find_pending(settings, engine, max_age_hours, limit)
        outcomes = fetch_outcomes(engine, source, pending) if pending else {}
        updated = write_actuals(settings, engine, outcomes) if outcomes else 0
    summary = BackfillSummary(pending=len(pending), found=len(outcomes), updated=updated)
    get_run_logger().info("backfill %s: %s", settings.family, summary)
    if updated:
        emit_event(
            event=LoopEvent.outcomes_recorded,
            resource=model_resource(settings, None),
            payload={"updated": updated, "source": source},
        )
    return asdict(summary)


@flow(name="backfill_every_model", on_failure=[alert_flow_failure])
def backfill_every_model(
    models: list[str] | None = None,
    source: str = "synthetic",
    max_age_hours: int = 24 * 7,
    limit: int = 50_000,
) -> dict[str, Any]:
    """backfill_actuals for each model (None: every declared model with a champion)."""
    return for_each_model(
        models,
        lambda name: backfill_actuals(source, max_age_hours, limit, model=name, return_state=True),
    )


if __name__ == "__main__":
    backfill_actuals()
