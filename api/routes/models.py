"""The registry: versions with metrics and aliases, promotion, rollback, the audit log."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from pydantic import Field
from sqlalchemy import select

from api.deps import Admin, RuntimeDep, SessionDep
from api.guards import KeyFirstRoute
from api.schemas import ChampionPublic, ModelsPublic, PromoteRequest, RollbackRequest
from ia_continu.learn import registry
from ia_continu.store.tables import ModelEvent

router = APIRouter(prefix="/models", tags=["models"], route_class=KeyFirstRoute)


class ChampionChangePublic(ChampionPublic):
    changed: bool = Field(
        description="false when nothing changed (promoting the version that is already champion)"
    )


def _champion(runtime, session) -> dict:
    state = registry.champion_state(session, runtime.settings.family.value)
    return {
        "family": runtime.settings.family.value,
        "registered_model": runtime.settings.registered_model_name,
        "champion_version": state.version,
        "previous_version": state.previous,
        "served_version": runtime.holder.current.version if runtime.holder.current else None,
    }


@router.get("", response_model=ModelsPublic)
def list_models(runtime: RuntimeDep, session: SessionDep) -> ModelsPublic:
    return ModelsPublic(
        **_champion(runtime, session),
        versions=registry.list_versions(runtime.settings),
        history=registry.champion_history(session, runtime.settings.family.value),
    )


@router.get("/events")
def events(
    runtime: RuntimeDep, session: SessionDep, limit: int = Query(50, ge=1, le=1000)
) -> list[dict]:
    rows = session.scalars(
        select(ModelEvent)
        .where(ModelEvent.family == runtime.settings.family.value)
        .order_by(ModelEvent.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "event": r.event,
            "version": r.version,
            "previous_version": r.previous_version,
            "reason": r.reason,
            "metrics": r.metrics,
            "at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def _changed(runtime, change: registry.ChampionChange) -> ChampionChangePublic:
    # This process serves the new champion before answering; the others within a poll.
    runtime.holder.refresh()
    served = runtime.holder.current
    return ChampionChangePublic(
        family=runtime.settings.family.value,
        registered_model=runtime.settings.registered_model_name,
        champion_version=change.after.version,
        previous_version=change.after.previous,
        served_version=served.version if served else None,
        changed=change.changed,
    )


@router.post(
    "/{version}/promote",
    response_model=ChampionChangePublic,
    dependencies=[Admin],
    responses={404: {"description": "unknown version"}},
)
def promote(
    version: str, runtime: RuntimeDep, body: PromoteRequest | None = None
) -> ChampionChangePublic:
    body = body or PromoteRequest()
    if not version.isdigit():
        raise HTTPException(404, f"unknown version '{version}': versions are numbers (GET /models)")
    try:
        change = registry.promote(runtime.engine, runtime.settings, version, reason=body.reason)
    except registry.UnknownVersion as exc:
        raise HTTPException(404, str(exc)) from None
    return _changed(runtime, change)


@router.post(
    "/rollback",
    response_model=ChampionChangePublic,
    dependencies=[Admin],
    responses={409: {"description": "no earlier champion"}},
)
def rollback(runtime: RuntimeDep, body: RollbackRequest | None = None) -> ChampionChangePublic:
    body = body or RollbackRequest()
    try:
        change = registry.rollback(runtime.engine, runtime.settings, reason=body.reason)
    except registry.NothingToRollBack as exc:
        raise HTTPException(409, str(exc)) from None
    return _changed(runtime, change)
