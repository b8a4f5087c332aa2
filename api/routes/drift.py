"""``GET /api/drift/latest``: the newest drift check of the served family, for the dashboard:
the inputs (``status``, ``dataset_drift``, per-feature scores) and, apart, the model's outputs
(``prediction_drift``, ``target_drift``, with their scores, methods and row counts)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import FamilyDep, SessionDep
from ia_continu.watch import drift

# Mounted at /api/drift (the default model) and /models/{model}/drift (api/main.py).
router = APIRouter(tags=["monitoring"])


@router.get("/latest")
def latest_drift(family: FamilyDep, session: SessionDep) -> drift.DriftStatus | drift.NoDriftCheck:
    """The last drift result, or ``{"status": "none"}`` before any check ran (never a 404:
    "no check yet" is a normal state for a new deployment, not an error)."""
    return drift.latest_status(session, family.name)
