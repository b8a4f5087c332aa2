"""Seed 000's feature-flag endpoints: read and change the ML rollout shared by every replica."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Admin, RuntimeDep, SessionDep
from api.guards import KeyFirstRoute
from ia_continu.serve import rollout

router = APIRouter(prefix="/api/feature-flags", tags=["rollout"], route_class=KeyFirstRoute)

Percentage = Field(ge=0, le=100, description="share of requests routed to ML, 0..100")


class EnableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    percentage: float | None = Field(
        None, ge=0, le=100, description="keep the current share if absent"
    )


class PercentageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    percentage: float = Percentage


class ConfigRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    fallback_on_error: bool | None = Field(
        None, description="answer with the heuristic when ML fails"
    )
    shadow_rate: float | None = Field(
        None, ge=0, le=1, description="share of requests scored by both ML and the fallback"
    )


def _status(runtime, session) -> dict[str, Any]:
    # Rows answered a moment ago may still wait in the writer's queue; make them count.
    runtime.writer.flush(timeout=2.0)
    state = rollout.read_state(session, runtime.settings)
    stats = rollout.stats(session, runtime.settings.family.value, state.stats_since)
    return {
        "family": runtime.settings.family.value,
        "config": {
            "ML_ENABLED": state.enabled,
            "ML_TRAFFIC_PERCENTAGE": state.percentage,
            "FALLBACK_ON_ERROR": state.fallback_on_error,
            "SHADOW_RATE": state.shadow_rate,
        },
        "stats": stats,
        "health": rollout.health(stats, state, runtime.settings),
        "updated_at": state.updated_at.isoformat(),
    }


def _change(runtime, session, message: str, **changes: Any) -> dict[str, Any]:
    rollout.update_state(session, runtime.settings, **changes)
    # Commit before invalidating, so this replica's cache re-reads the new row at once.
    session.commit()
    runtime.flags.invalidate()
    return {"success": True, "message": message, "status": _status(runtime, session)}


def _pct(value: float) -> str:
    return f"{value:g}%"


@router.get("/status")
def get_status(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    return _status(runtime, session)


@router.get("/ml/health")
def ml_health(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    return _status(runtime, session)["health"]


@router.post("/ml/enable", dependencies=[Admin])
def enable(
    runtime: RuntimeDep, session: SessionDep, body: EnableRequest | None = None
) -> dict[str, Any]:
    body = body or EnableRequest()
    percentage = body.percentage
    if percentage is None:
        percentage = rollout.read_state(session, runtime.settings).percentage
    return _change(
        runtime, session, f"ML enabled at {_pct(percentage)}", enabled=True, percentage=percentage
    )


@router.post("/ml/disable", dependencies=[Admin])
def disable(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    return _change(
        runtime, session, "ML disabled: the fallback answers every request", enabled=False
    )


@router.post("/ml/percentage", dependencies=[Admin])
def set_percentage(
    body: PercentageRequest, runtime: RuntimeDep, session: SessionDep
) -> dict[str, Any]:
    state = rollout.read_state(session, runtime.settings)
    note = "" if state.enabled else " (ML is disabled: enable it to route traffic)"
    return _change(
        runtime,
        session,
        f"ML traffic set to {_pct(body.percentage)}{note}",
        percentage=body.percentage,
    )


@router.post("/ml/config", dependencies=[Admin])
def set_config(body: ConfigRequest, runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "give fallback_on_error and/or shadow_rate"
        )
    said = ", ".join(f"{k}={v}" for k, v in changes.items())
    return _change(runtime, session, f"rollout updated: {said}", **changes)


@router.post("/reset-stats", dependencies=[Admin])
def reset_stats(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    # Rows still queued belong to the period being closed: write them before moving the mark.
    runtime.writer.flush(timeout=2.0)
    rollout.reset_stats(session, runtime.settings)
    session.commit()
    runtime.flags.invalidate()
    return {"success": True, "message": "stats reset", "status": _status(runtime, session)}
