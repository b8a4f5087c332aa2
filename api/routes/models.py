"""The registry: versions with metrics and aliases, promotion, rollback, the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import Admin, RuntimeDep, SessionDep
from api.errors import error_responses
from api.guards import KeyFirstRoute
from api.runtime import Runtime
from api.schemas import (
    ChampionChangePublic,
    ModelsPublic,
    PromoteRequest,
    RollbackRequest,
)
from ia_continu.errors import NothingToRollBack, UnknownVersion
from ia_continu.learn import registry

router = APIRouter(prefix="/models", tags=["models"], route_class=KeyFirstRoute)


def _served(runtime: Runtime) -> str | None:
    current = runtime.holder.current
    return current.version if current else None


@router.get("", response_model=ModelsPublic)
def list_models(runtime: RuntimeDep, session: SessionDep) -> ModelsPublic:
    settings = runtime.settings
    return ModelsPublic(
        **registry.champion(session, settings).model_dump(),
        served_version=_served(runtime),
        versions=registry.list_versions(settings),
        history=registry.champion_history(session, settings.family.value),
    )


@router.get("/events", response_model=list[registry.ModelEventRecord])
def events(
    runtime: RuntimeDep, session: SessionDep, limit: int = Query(50, ge=1, le=1000)
) -> list[registry.ModelEventRecord]:
    return registry.model_events(session, runtime.settings.family.value, limit)


def _changed(runtime: Runtime, change: registry.ChampionChange) -> ChampionChangePublic:
    # This process serves the new champion before answering; the others within a poll.
    runtime.holder.refresh()
    return ChampionChangePublic(**change.model_dump(), served_version=_served(runtime))


@router.post(
    "/{version}/promote",
    response_model=ChampionChangePublic,
    dependencies=[Admin],
    responses=error_responses(UnknownVersion),
)
def promote(
    version: str, runtime: RuntimeDep, body: PromoteRequest | None = None
) -> ChampionChangePublic:
    body = body or PromoteRequest()
    change = registry.promote(runtime.engine, runtime.settings, version, reason=body.reason)
    return _changed(runtime, change)


@router.post(
    "/rollback",
    response_model=ChampionChangePublic,
    dependencies=[Admin],
    responses=error_responses(NothingToRollBack),
)
def rollback(runtime: RuntimeDep, body: RollbackRequest | None = None) -> ChampionChangePublic:
    body = body or RollbackRequest()
    change = registry.rollback(runtime.engine, runtime.settings, reason=body.reason)
    return _changed(runtime, change)
