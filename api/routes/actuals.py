"""``POST /api/actuals``: actual outcomes, joined to the predictions they belong to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import Admin, ModelDep, RuntimeDep, SessionDep
from api.errors import ErrorPublic, error_responses
from api.guards import KeyFirstRoute
from api.schemas import Identifier
from ia_continu.errors import InvalidActual
from ia_continu.truth.actuals import RecordedActuals, record_actuals

# Mounted at /api (the default model) and /models/{model} (api/main.py).
router = APIRouter(tags=["monitoring"], route_class=KeyFirstRoute)


class ActualItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: Identifier | None = None
    booking_id: Identifier | None = None
    actual: Annotated[
        float | Annotated[str, Field(min_length=1, max_length=200)],
        Field(description="the real outcome: a number, or a declared class label"),
    ]

    @model_validator(mode="after")
    def _one_id(self) -> ActualItem:
        if not self.request_id and not self.booking_id:
            raise ValueError("give a request_id or a booking_id")
        return self


class ActualsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actuals: list[ActualItem] = Field(min_length=1)


@router.post(
    "/actuals",
    dependencies=[Admin],
    responses={
        **error_responses(InvalidActual),
        413: {"model": ErrorPublic, "description": "too many items in one call"},
    },
)
def post_actuals(
    body: ActualsRequest, runtime: RuntimeDep, model: ModelDep, session: SessionDep
) -> RecordedActuals:
    """Record outcomes; an outcome the served model's task cannot have is refused (422)
    before anything is written."""
    limit = runtime.settings.max_actuals_per_call
    if len(body.actuals) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"{len(body.actuals)} actuals: at most {limit} per call; split them",
        )
    # A prediction answered a moment ago may still be queued: write it first, or its
    # outcome would be reported as unknown.
    runtime.writer.flush(timeout=5.0)
    return record_actuals(
        session, model.settings, [item.model_dump(exclude_none=True) for item in body.actuals]
    )
