"""``/health`` (Uptime Kuma pings it) and ``/status``, the model, uptime and prediction count
as JSON for a monitoring page."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import RuntimeDep, SessionDep
from api.schemas import HealthPublic, ServedModelHealth
from ia_continu import __version__
from ia_continu.redact import redact, redact_tree
from ia_continu.watch.quality import prediction_count

router = APIRouter(tags=["health"])


# HEAD too: Uptime Kuma's HTTP monitor can send it (same checks, same status, no body).
@router.head("/health", include_in_schema=False)
@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "cannot serve"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    db_ok, db_error = await run_in_threadpool(runtime.check_database)
    holder, writer = runtime.holder, runtime.writer
    # Read from the dead-letter folder (a directory listing; a file is re-counted only when it
    # grew): off the event loop.
    dead_lettered = await run_in_threadpool(lambda: writer.dead_lettered)
    checks = {
        "database": "ok" if db_ok else db_error,
        "model_loaded": holder.current is not None,
        "served_version": holder.current.version if holder.current else None,
        "model_error": holder.load_error,
        "prediction_log_pending": writer.pending,
        "prediction_log_error": writer.last_error,
        "prediction_log_dead_lettered": dead_lettered,
        "prediction_log_lost": writer.lost,
        "prediction_log_last_refusal": writer.last_refusal,
        "prediction_log_replay_failures": writer.replay_failures,
        "prediction_log_replay_error": writer.replay_error,
    }
    # What is wrong with the prediction log while the database answers: rows it refused (set
    # aside until an operator moves the files away) and spooled rows that did not replay.
    log_problems = []
    if dead_lettered:
        last = f" (last: {writer.last_refusal})" if writer.last_refusal else ""
        log_problems.append(
            f"{dead_lettered} prediction rows refused by the database were set aside in "
            f"{writer.dead_letter_dir}{last}"
        )
    if writer.lost:
        log_problems.append(f"{writer.lost} answered predictions could not be logged at all")
    if writer.replay_error:
        log_problems.append(f"spooled predictions not replayed yet: {writer.replay_error}")
    status_, reason, code = "ok", None, 200
    if not db_ok:
        # Predictions are still answered (and kept for later), but nothing can be recorded.
        status_, reason, code = "error", f"database unreachable: {db_error}", 503
    elif holder.load_error:
        status_, reason = "degraded", holder.load_error + " (serving the fallback)"
    elif holder.current is None:
        status_, reason = "degraded", "no champion model yet: the fallback answers (POST /retrain)"
    if log_problems and code == 200:
        status_ = "degraded"
        reason = "; ".join(([reason] if reason else []) + log_problems)
    body = HealthPublic(
        status=status_,
        reason=reason,
        timestamp=datetime.now(UTC).isoformat(),
        version=__version__,
        family=runtime.settings.family,
        champion_version=holder.champion_version,
        checks=checks,
        models=[
            ServedModelHealth(
                name=name,
                champion_version=service.holder.champion_version,
                served_version=service.holder.current.version if service.holder.current else None,
                serving_engine=service.holder.current.engine if service.holder.current else None,
                load_error=service.holder.load_error,
            )
            for name, service in runtime.services.items()
        ],
    )
    # Public route, error texts from drivers and MLflow: no secret (URL password, key) shows.
    return JSONResponse(redact_tree(body.model_dump()), status_code=code)


class StatusModel(BaseModel):
    name: str  # the registered model name
    family: str
    version: str | None  # the served champion's, None before the first one
    exists: bool
    type: str | None  # the estimator's class
    load_error: str | None


class StatusApi(BaseModel):
    uptime_seconds: float
    total_predictions: int
    start_time: str
    version: str


class StatusMonitoring(BaseModel):
    status: Literal["operational", "fallback"]  # fallback: no model loaded
    metrics: str  # where the figures are


class StatusPublic(BaseModel):
    model: StatusModel
    api: StatusApi
    monitoring: StatusMonitoring


@router.get("/status", tags=["health"])
def status(runtime: RuntimeDep, session: SessionDep) -> StatusPublic:
    """The model served, the API's uptime and the predictions it logged."""
    holder = runtime.holder
    model = holder.current
    return StatusPublic(
        model=StatusModel(
            name=runtime.settings.registered_model_name,
            family=holder.family.name,
            version=model.version if model else None,
            exists=model is not None,
            type=model.estimator if model else None,
            load_error=redact(holder.load_error) if holder.load_error else None,
        ),
        api=StatusApi(
            uptime_seconds=round(time.time() - runtime.started_at, 1),
            total_predictions=prediction_count(session, holder.family.name),
            start_time=datetime.fromtimestamp(runtime.started_at, UTC).isoformat(),
            version=__version__,
        ),
        monitoring=StatusMonitoring(
            status="operational" if model else "fallback",
            metrics="/metrics (Prometheus), /api/ml-monitoring/summary (JSON)",
        ),
    )
