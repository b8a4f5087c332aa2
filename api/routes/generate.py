"""``POST /generate``: synthetic labelled data into the DB, to train on and to drift."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Admin, FamilyDep, SessionDep
from api.errors import error_responses
from api.guards import KeyFirstRoute
from api.schemas import GeneratePublic, GenerateRequest
from ia_continu.errors import NoSimulator
from ia_continu.learn.datasets import generate_dataset

router = APIRouter(tags=["data"], route_class=KeyFirstRoute)


@router.post(
    "/generate",
    response_model=GeneratePublic,
    dependencies=[Admin],
    responses=error_responses(NoSimulator),
)
def generate(
    session: SessionDep, family: FamilyDep, body: GenerateRequest | None = None
) -> GeneratePublic:
    body = body or GenerateRequest()
    dataset = generate_dataset(session, family, body.samples, drift=body.drift, seed=body.seed)
    return GeneratePublic(
        generation_id=dataset.generation_id,
        samples_created=dataset.samples_count,
        family=family.name,
        drift=dataset.drift,
        timestamp=dataset.created_at.isoformat() + "Z",
    )
