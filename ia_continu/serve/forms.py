"""The served form of a registered version: what an API process needs to answer with it.

A version is registered in MLflow as a scikit-learn pipeline (saved with skops). Loading it
back costs a serving process MLflow's client and tracking store, skops, scikit-learn, scipy
and pandas: about 200 MB resident and two seconds of imports before the first answer, to run
what is, for the built-in families, one dot product. So at registration a family that can
also writes the version's *served form* to the database: the arrays its scorer uses (an
``.npz`` read with ``allow_pickle=False``: data, never code; a declared model's ONNX bytes
among them) and a little JSON. The API loads a champion from its form when there is one, and
from MLflow otherwise (a declared version scikit-learn scores, a version registered before
forms existed); a version loaded from MLflow gets its form written then, so the next start of
every replica is lean.

The answers are the same either way by construction: a family's ``compile_scorer`` builds its
scorer from the very form it writes (``scorer_from_form(serving_form(pipeline))``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, Engine, and_, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ServingFormRecord

if TYPE_CHECKING:
    from ia_continu.families.base import ModelFamily

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingForm:
    """``kind`` says what the arrays mean and is versioned ("logistic/1"): a family reads
    only the kinds it knows, so a form written by a newer release is ignored (the version is
    then loaded from MLflow), never misread."""

    kind: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = field(default_factory=dict)  # JSON-safe values only

    def array_bytes(self) -> bytes:
        buffer = io.BytesIO()
        # Numbers only: an object array would need pickle, which neither side allows.
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in self.arrays.items()}
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_record(cls, record: ServingFormRecord) -> ServingForm:
        with np.load(io.BytesIO(record.arrays), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cls(record.kind, arrays, dict(record.meta))


def _of(family: str, version: str) -> ColumnElement[bool]:
    return and_(ServingFormRecord.family == family, ServingFormRecord.version == str(version))


def record(session: Session, family: str, version: str) -> ServingFormRecord | None:
    return session.scalars(select(ServingFormRecord).where(_of(family, version))).first()


def read(session: Session, family: str, version: str) -> ServingForm | None:
    found = record(session, family, version)
    return None if found is None else ServingForm.from_record(found)


def save(
    session: Session, family: str, version: str, form: ServingForm, *, replace: bool = False
) -> None:
    """Store ``form`` as ``version``'s. A replica backfilling a form keeps the one already
    there (two replicas at once: the second save is a no-op); the registration of a version
    (``replace``) overwrites it: an MLflow store reset under a kept database numbers its
    versions from 1 again, and a new version 1 must not be served with the old one's form."""
    if replace:
        session.execute(delete(ServingFormRecord).where(_of(family, version)))
    record = ServingFormRecord(
        family=family,
        version=str(version),
        kind=form.kind,
        meta=dict(form.meta),
        arrays=form.array_bytes(),
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        pass  # already there: written by the retrain, or by another replica


def keep(
    engine: Engine, family: ModelFamily, version: str, pipeline: Any, *, registering: bool
) -> bool:
    """Write ``version``'s form if its family has one (``registering``: the version was just
    registered, its form replaces any left under the same number; else a replica backfills
    it). False when there is none or it could not be stored. Never raises: without a form
    the version is served from MLflow, as before."""
    try:
        form = family.serving_form(pipeline)
        if form is None and not registering:
            return False
        with session_scope(engine) as session:
            if form is not None:
                save(session, family.name, version, form, replace=registering)
            elif registering:  # nothing of an older version 1 may outlive it either
                session.execute(delete(ServingFormRecord).where(_of(family.name, version)))
        return form is not None
    except Exception as exc:
        log.warning("serving form of %s version %s not stored: %s", family.name, version, exc)
        return False
