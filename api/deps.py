"""Typed dependencies shared by the routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from api.ratelimit import limit
from api.runtime import ModelService, Runtime
from api.security import require_api_key
from ia_continu.config import Settings
from ia_continu.families import ModelFamily
from ia_continu.store.engine import session_scope


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a sync dependency in its thread pool, and that hop per
    # request cost about a third of /predict's CPU (py-spy, bench/).
    return request.app.state.runtime


async def get_model(request: Request) -> ModelService:
    """The model a route works on: ``{model}`` in the path (``/models/{model}/...``), else
    the default model. Raises UnknownModel (404) for a name no declaration gives."""
    runtime: Runtime = request.app.state.runtime
    return runtime.model(request.path_params.get("model"))


async def model_in_path(
    model: Annotated[
        str,
        Path(
            pattern=r"^[a-z][a-z0-9_]{0,47}$",
            description="a declared model's name (GET /models/declared lists them)",
        ),
    ],
) -> None:
    """Declares ``{model}`` for the per-model mounts (OpenAPI); ``get_model`` resolves it."""


async def get_settings(model: Annotated[ModelService, Depends(get_model)]) -> Settings:
    return model.settings


async def get_family(model: Annotated[ModelService, Depends(get_model)]) -> ModelFamily:
    return model.family


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with session_scope(runtime.engine) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ModelDep = Annotated[ModelService, Depends(get_model)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
FamilyDep = Annotated[ModelFamily, Depends(get_family)]
# scope="function": the session commits before the response is sent. With FastAPI's default
# ("request"), a yield dependency exits after the answer has gone out, so a client could get
# 200 for outcomes or a rollout change that were not yet committed (and read stale figures
# right after, or lose them if the commit then failed).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

Admin = Depends(require_api_key)
# A rate-limit store outage leaves scoring up (fail open) and holds retraining (503): see
# api/ratelimit.py.
PredictLimit = Depends(limit("rate_limit_predict", fail_open=True))
RetrainLimit = Depends(limit("rate_limit_retrain", fail_open=False))
