"""The registry: versions with metrics and aliases, promotion, rollback, the audit log."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from api.deps import Admin, RuntimeDep, SessionDep
from api.schemas import ChampionPublic, ModelsPublic, PromoteRequest, RollbackRequest
from ia_continu import registry
from ia_continu.models import ModelEvent

router = APIRouter(prefix="/models", tags=["models"])


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


@router.post(
    "/{version}/promote",
    response_model=ChampionPublic,
    dependencies=[Admin],
    responses={404: {"description": "unknown version"}},
)
def promote(
    version: str, runtime: RuntimeDep, session: SessionDep, body: PromoteRequest | None = None
) -> ChampionPublic:
    body = body or PromoteRequest()
    if not version.isdigit():
        raise HTTPException(404, f"unknown version '{version}': versions are numbers (GET /models)")
    try:
        registry.promote(session, runtime.settings, version, reason=body.reason)
    except registry.UnknownVersion as exc:
        raise HTTPException(404, str(exc)) from None
    session.commit()
    runtime.holder.refresh()
    return ChampionPublic(**_champion(runtime, session))


@router.post(
    "/rollback",
    response_model=ChampionPublic,
    dependencies=[Admin],
    responses={409: {"description": "no earlier champion"}},
)
def rollback(
    runtime: RuntimeDep, session: SessionDep, body: RollbackRequest | None = None
) -> ChampionPublic:
    body = body or RollbackRequest()
    try:
        registry.rollback(session, runtime.settings, reason=body.reason)
    except registry.NothingToRollBack as exc:
        raise HTTPException(409, str(exc)) from None
    session.commit()
    runtime.holder.refresh()
    return ChampionPublic(**_champion(runtime, session))
