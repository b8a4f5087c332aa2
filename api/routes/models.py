"""The registry: versions with metrics and aliases, promotion, rollback, the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import Admin, ModelDep, RuntimeDep, SessionDep
from api.errors import error_responses
from api.guards import KeyFirstRoute
from api.runtime import ModelService
from api.schemas import (
    ChampionChangePublic,
    ModelsPublic,
    PromoteRequest,
    RollbackRequest,
)
from ia_continu.errors import NothingToRollBack, UnknownVersion
from ia_continu.learn import registry

# Mounted at /models (the default model) and at /models/{model} (api/main.py).
router = APIRouter(tags=["models"], route_class=KeyFirstRoute)


def _served(model: ModelService) -> str | None:
    current = model.holder.current
    return current.version if current else None


@router.get("", response_model=ModelsPublic)
def list_models(model: ModelDep, session: SessionDep) -> ModelsPublic:
    """The model's champion, its versions with their metrics, and the champion history."""
    settings = model.settings
    current = model.holder.current
    return ModelsPublic(
        **registry.champion(session, settings).model_dump(),
        model=model.name,
        task=model.family.task,
        served_version=_served(model),
        serving_engine=current.engine if current else None,
        onnx=current.onnx if current else None,
        versions=registry.list_versions(settings),
        history=registry.champion_history(session, settings.family),
    )


@router.get("/events", response_model=list[registry.ModelEventRecord])
def events(
    model: ModelDep, session: SessionDep, limit: int = Query(50, ge=1, le=1000)
) -> list[registry.ModelEventRecord]:
    return registry.model_events(session, model.name, limit)


def _changed(model: ModelService, change: registry.ChampionChange) -> ChampionChangePublic:
    # This process serves the new champion before answering; the others within a poll.
    model.holder.refresh()
    return ChampionChangePublic(**change.model_dump(), served_version=_served(model))


@router.post(
    "/{version}/promote",
    response_model=ChampionChangePublic,
    dependencies=[Admin],
    responses=error_responses(UnknownVersion),
)
def promote(
    version: str, runtime: RuntimeDep, model: ModelDep, body: PromoteRequest | None = None
) -> ChampionChangePublic:
    body = body or PromoteRequest()
    change = registry.promote(runtime.engine, model.settings, version, reason=body.reason)
    return _changed(model, change)


@router.post(
    "/rollback",
    response_model=ChampionChangePublic,
    dependencies=[Admin],
    responses=error_responses(NothingToRollBack),
)
def rollback(
    runtime: RuntimeDep, model: ModelDep, body: RollbackRequest | None = None
) -> ChampionChangePublic:
    body = body or RollbackRequest()
    change = registry.rollback(runtime.engine, model.settings, reason=body.reason)
    return _changed(model, change)
