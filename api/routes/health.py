"""``/health`` (Uptime Kuma pings it) and seed 003's JSON ``/status``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from api.deps import RuntimeDep
from api.schemas import HealthPublic
from ia_continu import __version__
from ia_continu.redact import redact, redact_tree
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog

router = APIRouter(tags=["health"])


# HEAD too: Uptime Kuma's HTTP monitor can send it (same checks, same status, no body).
@router.head("/health", include_in_schema=False)
@router.get(
    "/health",
    response_model=HealthPublic,
    responses={503: {"model": HealthPublic, "description": "cannot serve"}},
)
async def health(runtime: RuntimeDep):
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
        family=runtime.settings.family.value,
        champion_version=holder.champion_version,
        checks=checks,
    )
    # Public route, error texts from drivers and MLflow: no secret (URL password, key) shows.
    return JSONResponse(redact_tree(body.model_dump()), status_code=code)


@router.get("/status", tags=["health"])
def status(runtime: RuntimeDep) -> dict:
    """Seed 003's monitoring JSON: the model, the API's uptime and its predictions."""
    holder = runtime.holder
    with session_scope(runtime.engine) as session:
        total = session.scalar(
            select(func.count())
            .select_from(PredictionLog)
            .where(PredictionLog.family == holder.family.name)
        )
    model = holder.current
    return {
        "model": {
            "name": runtime.settings.registered_model_name,
            "family": holder.family.name,
            "version": model.version if model else None,
            "exists": model is not None,
            "type": type(model.pipeline.steps[-1][1]).__name__ if model else None,
            "load_error": redact(holder.load_error) if holder.load_error else None,
        },
        "api": {
            "uptime_seconds": round(time.time() - runtime.started_at, 1),
            "total_predictions": int(total or 0),
            "start_time": datetime.fromtimestamp(runtime.started_at, UTC).isoformat(),
            "version": __version__,
        },
        "monitoring": {
            "status": "operational" if model else "fallback",
            "metrics": "/metrics (Prometheus), /api/ml-monitoring/summary (JSON)",
        },
    }
