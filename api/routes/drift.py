"""``GET /api/drift/latest``: the newest drift check of the served family, for the dashboard."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import FamilyDep, SessionDep
from ia_continu.watch import drift

router = APIRouter(prefix="/api/drift", tags=["monitoring"])


@router.get("/latest")
def latest_drift(family: FamilyDep, session: SessionDep) -> drift.DriftStatus | drift.NoDriftCheck:
    """The last drift result, or ``{"status": "none"}`` before any check ran (never a 404:
    "no check yet" is a normal state for a new deployment, not an error)."""
    return drift.latest_status(session, family.name)
