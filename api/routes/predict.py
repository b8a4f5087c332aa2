"""``POST /predict`` (one row) and ``POST /predict/batch`` (many rows in one call)."""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response

from api.batch import answer_body, read_batch
from api.deps import ModelDep, PredictLimit
from api.runtime import ModelService
from api.schemas import (
    PredictBatchPublic,
    PredictBatchRequest,
    PredictionPublic,
    PredictRequest,
)
from ia_continu.errors import InvalidFeatures
from ia_continu.serve.answers import Context
from ia_continu.serve.inputs import row_matrix

router = APIRouter(tags=["predict"])


@router.post(
    "/predict",
    response_model=PredictionPublic,
    dependencies=[PredictLimit],
    responses={
        422: {"description": "invalid features"},
        503: {"description": "the model failed and fallback is off"},
    },
)
async def predict(body: PredictRequest, model: ModelDep) -> Response:
    # Domain errors propagate (InvalidFeatures: 422, ModelFailure: 503): api/errors.py maps them.
    # Most calls never reach this handler: api/fastpath.py answers the well-formed ones with
    # the same answer_one; this route answers everything else, and documents the endpoint.
    ctx = body.context or body
    answer = answer_one(
        model,
        body.features,
        body.request_id,
        ctx.booking_id or body.booking_id,
        ctx.driver_id or body.driver_id,
    )
    return Response(answer, media_type="application/json")


def answer_one(
    model: ModelService,
    features: list[Any] | dict[str, Any],
    request_id: str | None,
    booking_id: str | None,
    driver_id: str | None,
) -> bytes:
    """The JSON answer to one validated row: what ``POST /predict`` sends, on either path."""
    family = model.family
    X = row_matrix(features, family)
    context = Context([request_id], [booking_id], [driver_id])
    result = model.predictor.predict(X, context).row(0)
    if not math.isfinite(result["prediction"]):
        raise _no_finite_answer()
    result["prediction"] = family.label(result["prediction"])
    # Serialised directly: the answer is built by our code from validated inputs, and
    # re-validating it against the response model cost more than the scoring itself.
    # msgspec encodes it in ~1 µs against json.dumps' ~8; it would write NaN as null, so
    # finiteness is checked first, as json.dumps(allow_nan=False) did.
    if not _finite(result):
        raise _no_finite_answer()
    try:
        return _encode(result)
    except (TypeError, ValueError):  # a numpy scalar, a lone surrogate: the standard encoder
        return json.dumps(result).encode()


_encode = msgspec.json.Encoder().encode


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in an answer (its values, and the values they hold).

    One loop over the values, texts and None skipped first (most of an answer): 0.9 us for
    an answer against 2.4 us for the same check recursing through every value."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | tuple):
        return True
    for item in value:
        if isinstance(item, str) or item is None:
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif not _finite(item):
            return False
    return True


def _no_finite_answer() -> InvalidFeatures:
    # Bounded features and the predictor's guard (a non-finite ML answer falls back) keep
    # answers finite; if one still is not, refuse it rather than send `Infinity` (not JSON).
    return InvalidFeatures("no finite prediction for these features")


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
async def predict_batch(request: Request, model: ModelDep) -> Response:
    # The body is parsed straight into numpy (api/batch.py): a pydantic model per row costs
    # ~3x more for 10,000 rows (measured); validation is still strict, and errors say which
    # part. Input errors are InvalidInput (422, through api/errors.py); 413 and 415 stay
    # HTTPExceptions: a per-call row limit and a media type are the HTTP edge's rules.
    # Checked before the body is read: rows sent as a form or text are refused outright.
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"send the rows as application/json, not {media_type or 'no Content-Type'}",
        )
    batch = read_batch(await request.body(), model.family, model.settings.max_batch_rows)
    answers = model.predictor.predict(batch.X, batch.context)
    return Response(answer_body(answers, model.family), media_type="application/json")


# /models/{model}/batch: the per-model mount's short name for /models/{model}/predict/batch.
model_router = APIRouter(tags=["predict"])
model_router.add_api_route(
    "/batch",
    predict_batch,
    methods=["POST"],
    response_model=PredictBatchPublic,
    dependencies=[PredictLimit],
    openapi_extra=_BATCH_DOC,
    responses={413: {"description": "too many rows"}, 422: {"description": "invalid rows"}},
)
