"""``POST /predict`` (one row) and ``POST /predict/batch`` (many rows in one call)."""

from __future__ import annotations

import json
import math

import numpy as np
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from api.deps import PredictLimit, RuntimeDep
from api.schemas import (
    PredictBatchPublic,
    PredictBatchRequest,
    PredictionPublic,
    PredictRequest,
    first_invalid_identifier,
)
from ia_continu.families.base import InvalidFeatures
from ia_continu.serve.inputs import matrix_from, row_from
from ia_continu.serve.predictor import Context, ModelFailure

router = APIRouter(tags=["predict"])


def _as_label(family_task: str, value: float) -> float | int:
    return int(value) if family_task == "classification" else round(value, 4)


@router.post(
    "/predict",
    response_model=PredictionPublic,
    dependencies=[PredictLimit],
    responses={
        422: {"description": "invalid features"},
        503: {"description": "the model failed and fallback is off"},
    },
)
async def predict(body: PredictRequest, runtime: RuntimeDep) -> Response:
    family = runtime.holder.family
    try:
        X = np.array([row_from(body.features, family)], dtype=float)
        family.validate(X)
    except InvalidFeatures as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    ctx = body.context or body
    context = Context(
        [body.request_id], [ctx.booking_id or body.booking_id], [ctx.driver_id or body.driver_id]
    )
    try:
        result = runtime.predictor.predict(X, context).row(0)
    except ModelFailure as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    if not math.isfinite(result["prediction"]):
        raise _no_finite_answer()
    result["prediction"] = _as_label(family.task, result["prediction"])
    # Serialised directly: the answer is built by our code from validated inputs, and
    # re-validating it against the response model cost more than the scoring itself.
    return _json_response(result)


def _no_finite_answer() -> HTTPException:
    # Bounded features and the predictor's guard (a non-finite ML answer falls back) keep
    # answers finite; if one still is not, refuse it rather than send `Infinity` (not JSON).
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, "no finite prediction for these features"
    )


def _json_response(body: dict) -> Response:
    try:
        return Response(json.dumps(body, allow_nan=False), media_type="application/json")
    except ValueError:
        raise _no_finite_answer() from None


_BATCH_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": PredictBatchRequest.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            }
        },
    }
}


@router.post(
    "/predict/batch",
    response_model=PredictBatchPublic,
    dependencies=[PredictLimit],
    openapi_extra=_BATCH_DOC,
    responses={
        413: {"description": "too many rows, or a body over IA_CONTINU_MAX_BODY_BYTES"},
        415: {"description": "the body is not application/json"},
        422: {"description": "invalid rows"},
    },
)
async def predict_batch(request: Request, runtime: RuntimeDep) -> Response:
    # The body is parsed straight into numpy: a pydantic model per row costs ~3x more for
    # 10,000 rows (../shared/STACK.md); validation is still strict, and errors say which part.
    family, settings = runtime.holder.family, runtime.settings
    # Checked before the body is read: rows sent as a form or text are refused outright.
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the rows as application/json, not {media_type or 'no Content-Type'}",
        )
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:  # incl. integers of 4,300+ digits
        raise HTTPException(422, f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPException(422, "body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict) or "features" not in payload:
        raise HTTPException(422, "body must be an object with a 'features' list of rows")
    rows = payload["features"]
    if isinstance(rows, list) and len(rows) > settings.max_batch_rows:
        raise HTTPException(413, f"{len(rows)} rows: at most {settings.max_batch_rows} per call")
    try:
        X = matrix_from(rows, family)
    except InvalidFeatures as exc:
        raise HTTPException(422, str(exc)) from None
    n = len(X)
    columns: dict[str, list[str | None] | None] = {}
    for name in ("request_ids", "booking_ids", "driver_ids"):
        values = payload.get(name)
        if values is None:
            columns[name] = None
            continue
        if not isinstance(values, list) or len(values) != n:
            raise HTTPException(422, f"'{name}' must be a list with one entry per row ({n})")
        # The same rule as /predict's Identifier: strings only (no int), 1..100 characters,
        # no control character or lone surrogate (a row the database would refuse).
        if (invalid := first_invalid_identifier(values)) is not None:
            raise HTTPException(422, f"'{name}'[{invalid[0]}]: identifier {invalid[1]}")
        columns[name] = values
    try:
        answers = runtime.predictor.predict(X, Context(**columns))
    except ModelFailure as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    # Built from the columns: no per-row dict on the way out either.
    by_ml = answers.by_ml
    prediction = answers.prediction
    if not np.isfinite(prediction).all():
        raise _no_finite_answer()
    body = {
        "count": n,
        "model_version": answers.model_version if by_ml.any() else None,
        "timestamp": answers.created_at.isoformat() + "Z",
        "request_ids": answers.request_ids,
        "predictions": (
            prediction.astype(int) if family.task == "classification" else prediction.round(4)
        ).tolist(),
        "confidence": answers.confidence.round(6).tolist(),
        "served_by": np.where(by_ml, "ml", "fallback").tolist(),
        "decision": answers.decision.tolist(),
        "risk_level": answers.risk_level if family.task == "regression" else None,
    }
    return _json_response(body)
