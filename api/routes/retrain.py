"""``POST /retrain``: train, evaluate, log to MLflow, register, gate the promotion."""

from __future__ import annotations

from fastapi import APIRouter

from api import metrics
from api.deps import Admin, ModelDep, RetrainLimit, RuntimeDep
from api.errors import error_responses
from api.guards import KeyFirstRoute
from api.schemas import RetrainRequest
from ia_continu.errors import NoDatasetYet, UnknownDataset, UntrainableDataset
from ia_continu.learn.training import RetrainResult
from ia_continu.learn.training import retrain as run_retrain

router = APIRouter(tags=["models"], route_class=KeyFirstRoute)


@router.post(
    "/retrain",
    response_model=RetrainResult,
    dependencies=[Admin, RetrainLimit],
    responses=error_responses(UnknownDataset, NoDatasetYet, UntrainableDataset),
)
def retrain(
    runtime: RuntimeDep, model: ModelDep, body: RetrainRequest | None = None
) -> RetrainResult:
    body = body or RetrainRequest()
    family = model.name
    try:
        result = run_retrain(
            model.settings,
            runtime.engine,
            generation_id=body.generation_id,
            force=body.force,
            reason=body.reason,
        )
    except Exception:  # domain errors become 4xx in api/errors.py
        metrics.training_total.labels(family, "failed").inc()
        raise
    metrics.training_total.labels(family, result.status).inc()
    if result.promoted:
        model.holder.refresh()  # this replica serves it now; the others within a poll
    return result
