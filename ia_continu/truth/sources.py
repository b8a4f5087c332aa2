"""Where actual outcomes come from: a pluggable ground-truth source, the predictions still
waiting for one, and the labelled predictions that become training data.

A source answers "which of these predictions has a known outcome now?". In production that
is a bookings database or a label queue; the built-in one reads the ``synthetic_outcomes``
table that the traffic simulator (``ia_continu.sim``) fills, whose rows become visible
``ground_truth_delay_seconds`` after the prediction, as a ride's delay is known only once the
ride has ended.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ia_continu.families import ModelFamily
from ia_continu.learn.realign import realign_mixed
from ia_continu.store.schemas import schema_id
from ia_continu.store.tables import (
    Dataset,
    DatasetSample,
    PredictionLog,
    SyntheticOutcome,
    utcnow,
)


@runtime_checkable
class GroundTruthSource(Protocol):
    """Answers with the outcomes it knows; ids it does not know yet are simply absent."""

    def fetch(self, session: Session, request_ids: list[str]) -> dict[str, float]: ...


class SyntheticOutcomeSource:
    """The built-in source: outcomes the simulator realised, once their time has come."""

    def fetch(self, session: Session, request_ids: list[str]) -> dict[str, float]:
        now = utcnow()
        found: dict[str, float] = {}
        # Chunked: SQLite caps bound parameters, and backfills can hold tens of thousands.
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            rows = session.execute(
                select(SyntheticOutcome.request_id, SyntheticOutcome.actual).where(
                    SyntheticOutcome.request_id.in_(chunk), SyntheticOutcome.available_at <= now
                )
            ).all()
            found.update({rid: float(actual) for rid, actual in rows})
        return found


def get_source(name: str = "synthetic") -> GroundTruthSource:
    """Sources by name, so a deployment parameter can pick one."""
    if name == "synthetic":
        return SyntheticOutcomeSource()
    raise ValueError(f"unknown ground-truth source '{name}' (known: synthetic)")


def pending_request_ids(
    session: Session, family: str, *, max_age_hours: int = 24 * 7, limit: int = 50_000
) -> list[str]:
    """Predictions still waiting for their outcome, oldest first (they are due first)."""
    since = utcnow() - timedelta(hours=max_age_hours)
    return list(
        session.scalars(
            select(PredictionLog.request_id)
            .where(
                PredictionLog.family == family,
                PredictionLog.actual.is_(None),
                PredictionLog.created_at >= since,
            )
            .order_by(PredictionLog.id)
            .limit(limit)
        )
    )


# --- labelled predictions as training data ---------------------------------------------------


def snapshot_labelled(
    session: Session,
    family: ModelFamily,
    *,
    hours: int = 24,
    min_rows: int = 200,
    max_rows: int = 10_000,
) -> int | None:
    """Copy recent predictions that have an outcome into a new dataset; its generation_id.

    This is what makes a retrain after drift useful: the challenger learns from the world as
    it is now, not from the dataset the drifted champion was trained on. None when there are
    too few labelled rows to train on.
    """
    since = utcnow() - timedelta(hours=hours)
    rows = session.execute(
        select(PredictionLog.features, PredictionLog.schema_id, PredictionLog.actual)
        .where(
            PredictionLog.family == family.name,
            PredictionLog.actual.is_not(None),
            PredictionLog.created_at >= since,
        )
        .order_by(PredictionLog.id.desc())
        .limit(max_rows)
    ).all()
    if len(rows) < min_rows:
        return None
    # Rows logged under an older declaration are stored in today's feature order (those
    # lacking a required feature are left out): the dataset has one schema, the current one.
    realigned = realign_mixed(session, [r[0] for r in rows], [r[1] for r in rows], family)
    actuals = [float(r[2]) for r, kept in zip(rows, realigned.kept.tolist(), strict=True) if kept]
    if len(actuals) < min_rows:
        return None
    now = utcnow()
    dataset = Dataset(
        family=family.name,
        samples_count=len(actuals),
        drift=False,
        seed=None,
        hour_generated=now.hour,
        created_at=now,
        source="predictions",
        schema_id=schema_id(session, family.name, family.feature_names),
    )
    session.add(dataset)
    session.flush()
    session.execute(
        insert(DatasetSample),
        [
            {"generation_id": dataset.generation_id, "features": x, "target": a}
            for x, a in zip(realigned.X.tolist(), actuals, strict=True)
        ],
    )
    return dataset.generation_id
