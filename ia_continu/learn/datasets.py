"""Synthetic datasets (``POST /generate``): draw, store, and load them back for training."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ia_continu.errors import NoDatasetYet, UnknownDataset, UntrainableDataset
from ia_continu.families import ModelFamily
from ia_continu.learn.realign import missing_features, realign, schema_names
from ia_continu.store.schemas import schema_id
from ia_continu.store.tables import Dataset, DatasetSample, utcnow

# Without an explicit choice the synthetic world drifts on odd hours, by this much: data that
# changes on its own clock, for the drift check and the retrain rule to find.
CLOCK_DRIFT = 0.5


@dataclass(frozen=True, slots=True)
class LoadedDataset:
    generation_id: int
    X: np.ndarray
    y: np.ndarray


def drift_for(hour: int, drift: bool | float | None) -> float:
    """None follows the clock (odd hours drift); True/False force it; a float sets it."""
    if drift is None:
        return CLOCK_DRIFT if hour % 2 == 1 else 0.0
    if isinstance(drift, bool):
        return CLOCK_DRIFT if drift else 0.0
    return float(drift)


def generate_dataset(
    session: Session,
    family: ModelFamily,
    samples: int,
    *,
    drift: bool | float | None = None,
    seed: int | None = None,
    now: datetime | None = None,
) -> Dataset:
    now = now or utcnow()
    rng = np.random.default_rng(seed)
    shift = drift_for(now.hour, drift)
    X, y = family.sample(samples, rng=rng, drift=shift)
    dataset = Dataset(
        family=family.name,
        samples_count=samples,
        drift=shift != 0.0,
        seed=seed,
        hour_generated=now.hour,
        created_at=now,
        source="simulator",
        schema_id=schema_id(session, family.name, family.feature_names),
    )
    session.add(dataset)
    session.flush()
    rows = [
        {"generation_id": dataset.generation_id, "features": x, "target": t}
        for x, t in zip(X.round(6).tolist(), y.tolist(), strict=True)
    ]
    session.execute(insert(DatasetSample), rows)
    return dataset


def load_dataset(
    session: Session, family: ModelFamily, generation_id: int | None = None
) -> LoadedDataset:
    """The chosen dataset of this family, or the latest one, in the current feature order.

    Rows stored under another feature order are realigned by name; rows that lack a required
    feature are left out, and if none is left UntrainableDataset names what they lack."""
    query = select(Dataset.generation_id, Dataset.schema_id).where(Dataset.family == family.name)
    if generation_id is not None:
        query = query.where(Dataset.generation_id == generation_id)
    found = session.execute(query.order_by(Dataset.generation_id.desc()).limit(1)).first()
    if found is None:
        if generation_id is not None:
            raise UnknownDataset(f"no dataset {generation_id} for family '{family.name}'")
        raise NoDatasetYet(f"no dataset for family '{family.name}' yet: call POST /generate first")
    gid, sid = found
    rows = session.execute(
        select(DatasetSample.features, DatasetSample.target)
        .where(DatasetSample.generation_id == gid)
        .order_by(DatasetSample.id)
    ).all()
    stored = None if sid is None else schema_names(session, [sid]).get(sid, ())
    X, kept = realign([r[0] for r in rows], stored, family)
    if rows and not kept.any():
        lacking = missing_features(stored, family)
        why = (
            f"its rows lack the required feature(s) {lacking}: declare them optional with a "
            "default, or train on newer data"
            if lacking
            else f"its rows do not match their feature schema {list(stored or ())}"
        )
        raise UntrainableDataset(
            f"dataset {gid} of '{family.name}' cannot be read with the current declaration: " + why
        )
    y = np.asarray([r[1] for r in rows], dtype=float)[kept]
    return LoadedDataset(gid, X, y)
