"""The ML rollout flag's endpoints: read it, change it (admin), and see how ML is doing.

The flag is shared by every replica (``ia_continu.serve.flag``); a change made here reaches
this replica at once and the others within ``rollout_cache_seconds``.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from api.deps import Admin, ModelDep, RuntimeDep, SessionDep
from api.guards import KeyFirstRoute
from api.runtime import ModelService, Runtime
from api.schemas import (
    ConfigRequest,
    EnableRequest,
    PercentageRequest,
    RolloutChangePublic,
    RolloutConfigPublic,
    RolloutHealthPublic,
    RolloutStatsPublic,
    RolloutStatusPublic,
)
from ia_continu.errors import InvalidInput
from ia_continu.serve import flag
from ia_continu.watch.rollout_health import RolloutHealth, RolloutStats, rollout_stats, verdict

# Mounted at /api/feature-flags (the default model) and /models/{model}/rollout (api/main.py).
router = APIRouter(tags=["rollout"], route_class=KeyFirstRoute)


def _stats_public(stats: RolloutStats) -> RolloutStatsPublic:
    return RolloutStatsPublic(
        total_requests=stats.total_requests,
        ml_requests=stats.ml_requests,
        ml_successes=stats.ml_successes,
        ml_failures=stats.ml_failures,
        fallback_requests=stats.fallback_requests,
        shadow_requests=stats.shadow_requests,
        ml_success_rate=stats.ml_success_rate,
        ml_usage_rate=stats.ml_usage_rate,
        since=stats.since.isoformat(),
    )


def _health_public(health: RolloutHealth) -> RolloutHealthPublic:
    return RolloutHealthPublic(
        status=health.status,
        reason=health.reason,
        success_rate=health.success_rate,
        error_rate=health.error_rate,
        ml_requests=health.ml_requests,
    )


def _status(runtime: Runtime, model: ModelService, session: Session) -> RolloutStatusPublic:
    # Rows answered a moment ago may still wait in the writer's queue; make them count.
    runtime.writer.flush(timeout=2.0)
    settings = model.settings
    state = flag.read_state(session, settings)
    stats = rollout_stats(session, settings.family, state.stats_since)
    return RolloutStatusPublic(
        family=settings.family,
        config=RolloutConfigPublic(
            ml_enabled=state.enabled,
            ml_traffic_percentage=state.percentage,
            fallback_on_error=state.fallback_on_error,
            shadow_rate=state.shadow_rate,
        ),
        stats=_stats_public(stats),
        health=_health_public(verdict(stats, state, settings)),
        updated_at=state.updated_at.isoformat(),
    )


def _changed(
    runtime: Runtime, model: ModelService, session: Session, message: str
) -> RolloutChangePublic:
    # Commit before invalidating, so this replica's cache re-reads the new row at once.
    session.commit()
    model.flags.invalidate()
    return RolloutChangePublic(
        success=True, message=message, status=_status(runtime, model, session)
    )


def _pct(value: float) -> str:
    return f"{value:g}%"


@router.get("/status")
def get_status(runtime: RuntimeDep, model: ModelDep, session: SessionDep) -> RolloutStatusPublic:
    return _status(runtime, model, session)


@router.get("/ml/health")
def ml_health(runtime: RuntimeDep, model: ModelDep, session: SessionDep) -> RolloutHealthPublic:
    return _status(runtime, model, session).health


@router.post("/ml/enable", dependencies=[Admin])
def enable(
    runtime: RuntimeDep, model: ModelDep, session: SessionDep, body: EnableRequest | None = None
) -> RolloutChangePublic:
    percentage = body.percentage if body is not None else None
    if percentage is None:
        percentage = flag.read_state(session, model.settings).percentage
    flag.update_state(session, model.settings, enabled=True, percentage=percentage)
    return _changed(runtime, model, session, f"ML enabled at {_pct(percentage)}")


@router.post("/ml/disable", dependencies=[Admin])
def disable(runtime: RuntimeDep, model: ModelDep, session: SessionDep) -> RolloutChangePublic:
    flag.update_state(session, model.settings, enabled=False)
    return _changed(runtime, model, session, "ML disabled: the fallback answers every request")


@router.post("/ml/percentage", dependencies=[Admin])
def set_percentage(
    body: PercentageRequest, runtime: RuntimeDep, model: ModelDep, session: SessionDep
) -> RolloutChangePublic:
    state = flag.read_state(session, model.settings)
    note = "" if state.enabled else " (ML is disabled: enable it to route traffic)"
    flag.update_state(session, model.settings, percentage=body.percentage)
    return _changed(runtime, model, session, f"ML traffic set to {_pct(body.percentage)}{note}")


@router.post("/ml/config", dependencies=[Admin])
def set_config(
    body: ConfigRequest, runtime: RuntimeDep, model: ModelDep, session: SessionDep
) -> RolloutChangePublic:
    if body.fallback_on_error is None and body.shadow_rate is None:
        raise InvalidInput("give fallback_on_error and/or shadow_rate")
    flag.update_state(
        session,
        model.settings,
        fallback_on_error=body.fallback_on_error,
        shadow_rate=body.shadow_rate,
    )
    said = ", ".join(f"{k}={v}" for k, v in body.model_dump(exclude_none=True).items())
    return _changed(runtime, model, session, f"rollout updated: {said}")


@router.post("/reset-stats", dependencies=[Admin])
def reset_stats(runtime: RuntimeDep, model: ModelDep, session: SessionDep) -> RolloutChangePublic:
    # Rows still queued belong to the period being closed: write them before moving the mark.
    runtime.writer.flush(timeout=2.0)
    flag.reset_stats(session, model.settings)
    return _changed(runtime, model, session, "stats reset")
