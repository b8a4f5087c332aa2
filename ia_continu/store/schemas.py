"""Feature schemas: which feature each stored position is, one row per (model, ordered names)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ia_continu.store.tables import FeatureSchema


def names_fingerprint(names: Sequence[str]) -> str:
    """SHA-256 of the names in order (JSON-encoded, so no separator can be ambiguous)."""
    return hashlib.sha256(json.dumps(list(names)).encode()).hexdigest()


def schema_id(session: Session, family_name: str, names: Sequence[str]) -> int:
    """The id of the FeatureSchema row for ``family_name`` and ``names``, created if new.

    Race-safe: two sessions creating the same schema both end with the one row, since the
    insert runs in a savepoint and the unique constraint sends the loser back to a select."""
    fingerprint = names_fingerprint(names)
    query = select(FeatureSchema.id).where(
        FeatureSchema.family == family_name, FeatureSchema.fingerprint == fingerprint
    )
    found = session.scalar(query)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            row = FeatureSchema(family=family_name, names=list(names), fingerprint=fingerprint)
            session.add(row)
        return row.id
    except IntegrityError:  # created meanwhile by another session: its row is the one
        found = session.scalar(query)
        if found is None:
            raise
        return found
