"""``GET /api/drift/latest``: the newest drift check of the served family, for the dashboard."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import RuntimeDep, SessionDep
from ia_continu.store.tables import DriftReport

router = APIRouter(prefix="/api/drift", tags=["monitoring"])


@router.get("/latest")
def latest_drift(runtime: RuntimeDep, session: SessionDep) -> dict[str, Any]:
    """The last drift result, or ``{"status": "none"}`` before any check ran (never a 404:
    "no check yet" is a normal state for a new deployment, not an error)."""
    row = session.scalars(
        select(DriftReport)
        .where(DriftReport.family == runtime.settings.family.value)
        .order_by(DriftReport.created_at.desc(), DriftReport.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return {"status": "none"}
    return {
        "status": "drift" if row.dataset_drift else "ok",
        "dataset_drift": row.dataset_drift,
        "drift_share": row.drift_share,
        "drifted_features": row.drifted_features,
        "feature_scores": row.feature_scores,
        "reference_rows": row.reference_rows,
        "current_rows": row.current_rows,
        "model_version": row.model_version,
        "created_at": row.created_at.isoformat(),
        "report_path": row.report_path,
    }
