"""Stored feature rows read in the model's current feature order, matched by name.

Datasets and the prediction log keep each row's features as a list of encoded numbers, and
the row's ``schema_id`` (a ``FeatureSchema``) says which feature each position is. When the
declaration gains, drops or reorders a feature, readers realign the stored positions to the
current ``family.feature_names``: a feature the old rows lack takes its declared default when
it is optional; when it is required those rows cannot be used, and are left out rather than
misread. A NULL ``schema_id`` (rows from before schemas were recorded) is read in the
family's current order, the only order those rows were ever written in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ia_continu.families import ModelFamily
from ia_continu.store.tables import FeatureSchema


def missing_features(stored_names: Sequence[str] | None, family: ModelFamily) -> list[str]:
    """Current features that rows stored under ``stored_names`` lack and that have no
    default: what makes those rows unusable (empty when they can be read)."""
    if stored_names is None:
        return []
    have = set(stored_names)
    return [
        name
        for name in family.feature_names
        if name not in have and family.feature_default(name) is None
    ]


def realign(
    rows: Sequence[Sequence[float]], stored_names: Sequence[str] | None, family: ModelFamily
) -> tuple[np.ndarray, np.ndarray]:
    """Rows stored under ``stored_names`` (None: the current order) -> ``(X, kept_mask)``.

    ``X`` holds the usable rows only, in the current feature order; ``kept_mask`` says, for
    each input row, whether it is in ``X``. A row is unusable when a required current feature
    is not among ``stored_names`` (see ``missing_features``), or when its length is not the
    schema's (a row that does not match its schema cannot be read position by position).
    """
    current = family.feature_names
    names = current if stored_names is None else tuple(stored_names)
    n, width = len(rows), len(names)
    if missing_features(names, family):
        return np.empty((0, len(current))), np.zeros(n, bool)
    stored, kept = _matrix(rows, width)
    if names == current:
        return stored, kept
    position = {name: i for i, name in enumerate(names)}
    X = np.empty((len(stored), len(current)))
    for j, name in enumerate(current):
        p = position.get(name)
        X[:, j] = stored[:, p] if p is not None else family.feature_default(name)
    return X, kept


def _matrix(rows: Sequence[Sequence[float]], width: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of length ``width`` as a matrix, and which rows those are."""
    try:  # the usual case, every row of its schema's length: one conversion
        stored = np.asarray(rows, dtype=float)
        if stored.shape == (len(rows), width) or not rows:
            return stored.reshape(len(rows), width), np.ones(len(rows), bool)
    except ValueError:  # ragged rows
        pass
    kept = np.fromiter((len(r) == width for r in rows), bool, len(rows))
    picked = [r for r, k in zip(rows, kept.tolist(), strict=True) if k]
    return np.asarray(picked, dtype=float).reshape(len(picked), width), kept


def schema_names(session: Session, ids: Collection[int]) -> dict[int, tuple[str, ...]]:
    """Each schema id's ordered feature names."""
    if not ids:
        return {}
    found = session.execute(
        select(FeatureSchema.id, FeatureSchema.names).where(FeatureSchema.id.in_(list(ids)))
    ).all()
    return {sid: tuple(names) for sid, names in found}


@dataclass(frozen=True, slots=True)
class Realigned:
    X: np.ndarray  # the usable rows, in the current feature order (input order kept)
    kept: np.ndarray  # bool, one per input row: is it in X
    missing: list[str]  # required current features some rows lacked (why they were left out)


def realign_mixed(
    session: Session,
    features: Sequence[Sequence[float]],
    schema_ids: Sequence[int | None],
    family: ModelFamily,
) -> Realigned:
    """``realign`` for rows stored under several schemas (the prediction log spans
    declaration changes). A row whose schema id is unknown is left out."""
    n = len(features)
    groups: dict[int | None, list[int]] = {}
    for i, sid in enumerate(schema_ids):
        groups.setdefault(sid, []).append(i)
    names = schema_names(session, [sid for sid in groups if sid is not None])
    X = np.empty((n, family.n_features))
    kept = np.zeros(n, bool)
    missing: set[str] = set()
    for sid, index in groups.items():
        if sid is not None and sid not in names:
            continue
        stored = None if sid is None else names[sid]
        part, part_kept = realign([features[i] for i in index], stored, family)
        missing.update(missing_features(stored, family))
        rows = np.asarray(index)[part_kept]
        X[rows] = part
        kept[rows] = True
    return Realigned(X[kept], kept, sorted(missing))
