"""What one call answers, column by column, and what the prediction log gets of it.

A single prediction is a batch of one. Columns keep the hot path in numpy: a row as a mapping
(``Answers.row``) is built only when asked for, and the log rows (``LogChunk.rows``) in the
log writer's thread, off the request path.

Shadow mode scores some rows with both ML and the fallback: ``merge`` serves each row the
answer of whoever the rollout picked, and keeps both predictions for the log, where the lift
of ML over the fallback is measured once the outcomes are known.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np

from ia_continu.families.base import Scores
from ia_continu.log.jsontext import factor_json, factors_as_json, row_json, rows_as_json
from ia_continu.log.rows import LogRow, rows_from_columns
from ia_continu.vocab import Decision, ServedBy

_ML, _FALLBACK = ServedBy.ml, ServedBy.fallback
# The log rows carry these words as plain str, not as the StrEnum members: the sqlite3 driver
# binds an exact str directly but sends a str subclass through its adaptation lookup first
# (~0.15 us a value, in the thread that shares the serving core). Equal either way.
_ML_TEXT, _FALLBACK_TEXT = str(ServedBy.ml), str(ServedBy.fallback)
_DECISION_TEXT: dict[str, str] = {d: str(d) for d in Decision}


@dataclass(slots=True)
class Context:
    """Per-row identifiers, as columns (one entry per row, or None for the whole column)."""

    request_ids: list[str | None] | None = None
    booking_ids: list[str | None] | None = None
    driver_ids: list[str | None] | None = None


@dataclass(slots=True)
class Answers:
    """The answers to one call, column by column."""

    request_ids: list[str]
    prediction: np.ndarray
    confidence: np.ndarray
    by_ml: np.ndarray  # bool: who answered each row
    decision: np.ndarray  # object: each row's vocab.Decision, why
    model_version: str | None  # the ML model's version (fallback rows say "fallback")
    latency_ms: float  # per row
    created_at: datetime
    risk_level: Sequence[str | None] | None = None
    contributing_factors: Sequence[dict[str, float] | None] | None = None
    probability: np.ndarray | None = None  # NaN on the fallback's rows
    ml_prediction: np.ndarray | None = None  # NaN where ML did not score the row
    fallback_prediction: np.ndarray | None = None  # NaN where the fallback did not
    # While a challenger is live (Predictor's _ArmRows.annotate): each row's vocab.Arm (None
    # outside the ML rows), its version, the rows it answered, and its shadow answers.
    arm: list[str | None] | None = None
    challenger_version: str | None = None
    by_challenger: np.ndarray | None = None  # bool
    challenger_prediction: np.ndarray | None = None  # NaN where it did not shadow the row

    def version(self, i: int) -> str:
        """Who answered row ``i``: a model version, or "fallback"."""
        if not self.by_ml[i]:
            return _FALLBACK_TEXT
        if self.by_challenger is not None and self.by_challenger[i]:
            return self.challenger_version or _FALLBACK_TEXT
        return self.model_version or _FALLBACK_TEXT

    def versions(self) -> list[str]:
        """``version`` of every row."""
        by_ml = self.by_ml.tolist()
        if self.by_challenger is None or not self.by_challenger.any():
            ml = self.model_version or _FALLBACK_TEXT
            return [ml if m else _FALLBACK_TEXT for m in by_ml]
        return [self.version(i) for i in range(len(by_ml))]

    def __len__(self) -> int:
        return len(self.request_ids)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as the mapping ``/predict`` answers (before the label is formatted)."""
        # .item(i): the Python value without a numpy scalar in between (this runs on every
        # /predict); the served_by members are read once, at import.
        by_ml = bool(self.by_ml.item(i))
        out = {
            "request_id": self.request_ids[i],
            "prediction": float(self.prediction.item(i)),
            "confidence": round(float(self.confidence.item(i)), 6),
            "model_version": self.version(i),
            "served_by": _ML if by_ml else _FALLBACK,
            "decision": self.decision[i],
            "risk_level": self.risk_level[i] if self.risk_level else None,
            "contributing_factors": (
                self.contributing_factors[i] if self.contributing_factors else None
            ),
            "latency_ms": round(self.latency_ms, 4),
            "timestamp": self.created_at.isoformat() + "Z",
        }
        if self.probability is not None:
            probability = self.probability.item(i)
            if probability == probability:  # ML rows only (NaN on the fallback's)
                out["probability"] = round(float(probability), 6)
        return out


@dataclass(frozen=True, slots=True)
class _Spread:
    """One scorer's answers over all n rows: NaN (numbers) or None elsewhere; every column
    None when that scorer did not run."""

    prediction: np.ndarray | None
    confidence: np.ndarray | None
    probability: np.ndarray | None
    risk_level: Sequence[Any] | None
    contributing_factors: Sequence[Any] | None


def merge(
    *,
    request_ids: list[str],
    decision: np.ndarray,
    use_ml: np.ndarray,
    ml: Scores | None,
    ml_rows: np.ndarray,
    fallback: Scores | None,
    fallback_rows: np.ndarray,
    model_version: str | None,
    created_at: datetime,
) -> Answers:
    """Each row's answer from whoever ``use_ml`` says served it, both predictions kept.

    ``ml`` scored the ``ml_rows`` and ``fallback`` the ``fallback_rows`` (boolean masks), and
    together they cover every row. ``latency_ms`` is left at 0 for the caller to set.
    """
    n = len(request_ids)
    ml_full = _spread(ml, ml_rows, n)
    fb_full = _spread(fallback, fallback_rows, n)
    prediction = _pick(use_ml, ml_full.prediction, fb_full.prediction)
    confidence = _pick(use_ml, ml_full.confidence, fb_full.confidence)
    assert prediction is not None and confidence is not None  # someone answered every row
    return Answers(
        request_ids=request_ids,
        prediction=prediction,
        confidence=confidence,
        by_ml=use_ml,
        decision=decision,
        model_version=model_version,
        latency_ms=0.0,
        created_at=created_at,
        risk_level=_pick_list(use_ml, ml_full.risk_level, fb_full.risk_level),
        contributing_factors=_pick_list(
            use_ml, ml_full.contributing_factors, fb_full.contributing_factors
        ),
        probability=_pick(use_ml, ml_full.probability, fb_full.probability),
        ml_prediction=ml_full.prediction,
        fallback_prediction=fb_full.prediction,
    )


_NOT_SCORED = _Spread(None, None, None, None, None)


def _spread(scores: Scores | None, mask: np.ndarray, n: int) -> _Spread:
    """Scores computed on the ``mask`` rows -> full-length columns."""
    if scores is None:
        return _NOT_SCORED
    everywhere = bool(mask.all())

    def numbers(values: np.ndarray) -> np.ndarray:
        if everywhere:
            return np.asarray(values, dtype=float)
        full = np.full(n, np.nan)
        full[mask] = values
        return full

    def objects(values: Sequence[Any] | None) -> Sequence[Any] | None:
        if values is None:
            return None
        if everywhere:  # as it is: a deferred sequence (TopFactors) stays deferred
            return values
        full: list[Any] = [None] * n
        for i, v in zip(np.flatnonzero(mask).tolist(), values, strict=True):
            full[i] = v
        return full

    probability = scores.extra.get("probability")
    return _Spread(
        prediction=numbers(scores.prediction),
        confidence=numbers(scores.confidence),
        probability=numbers(probability) if probability is not None else None,
        risk_level=objects(scores.risk_level),
        contributing_factors=objects(scores.contributing_factors),
    )


def _pick(use_ml: np.ndarray, ml: np.ndarray | None, fb: np.ndarray | None) -> np.ndarray | None:
    """The ML column where ML served the row, the fallback's elsewhere (NaN if it has none)."""
    if ml is None:
        if fb is None:
            return None
        return fb if not use_ml.any() else np.where(use_ml, np.nan, fb)
    if fb is None:
        return ml if use_ml.all() else np.where(use_ml, ml, np.nan)
    return np.where(use_ml, ml, fb)


def _pick_list(
    use_ml: np.ndarray, ml: Sequence[Any] | None, fb: Sequence[Any] | None
) -> Sequence[Any] | None:
    """``_pick`` for object columns (None where the answerer has none)."""
    if ml is None and fb is None:
        return None
    if use_ml.all() and ml is not None:
        return ml
    if not use_ml.any() and fb is not None:
        return fb
    none: list[Any] = [None] * len(use_ml)
    a, b = ml or none, fb or none
    return [x if m else y for m, x, y in zip(use_ml.tolist(), a, b, strict=True)]


@dataclass(slots=True)
class LogChunk:
    """What the prediction log needs of one call; expanded into rows by the writer thread."""

    family: str
    features: np.ndarray
    context: Context
    answers: Answers
    rollout_percentage: float
    schema_id: int | None = None  # the served feature order's FeatureSchema.id

    def __len__(self) -> int:
        return len(self.answers)

    def rows(self) -> list[LogRow]:
        if len(self.answers) == 1:
            return [self._one_row()]
        return self._rows_from_columns()

    def _one_row(self) -> LogRow:
        """``_rows_from_columns`` of a one-row call (every ``/predict``), built directly: the
        columns' lists, zips and repeats cost about twice the row itself, in the writer's
        thread, which shares the serving core and the GIL. The confidence is rounded as the
        client was answered (``Answers.row``: Python's round, exact; numpy's round on the
        columns can differ in the last digit kept, and costs ~5 us on one value)."""
        a, c = self.answers, self.context
        factors = a.contributing_factors[0] if a.contributing_factors else None
        # By position, in LogRow's order (its keyword form costs 0.75 us a row more, in the
        # thread that shares the serving core): test_a_one_row_log_row_is_the_columnar_row
        # holds it to the columnar row, field by field.
        return _new_row(
            LogRow,
            (
                a.request_ids[0],  # request_id
                c.booking_ids[0] if c.booking_ids else None,  # booking_id
                c.driver_ids[0] if c.driver_ids else None,  # driver_id
                self.family,  # family
                _row_json(self.features),  # features
                a.prediction.tolist()[0],  # prediction
                round(a.confidence.tolist()[0], 6),  # confidence
                a.risk_level[0] if a.risk_level else None,  # risk_level
                None if factors is None else factor_json(factors),  # contributing_factors
                a.version(0),  # model_version
                a.latency_ms,  # latency_ms
                _text(a.decision[0]),  # decision
                _ML_TEXT if a.by_ml.tolist()[0] else _FALLBACK_TEXT,  # served_by
                self.rollout_percentage,  # rollout_percentage
                _first(a.ml_prediction),  # ml_prediction
                _first(a.fallback_prediction),  # fallback_prediction
                self.schema_id,  # schema_id
                a.arm[0] if a.arm else None,  # arm
                a.challenger_version if a.arm else None,  # challenger_version
                _first(a.challenger_prediction),  # challenger_prediction
                a.created_at,  # created_at
                a.created_at,  # updated_at
            ),
        )

    def _rows_from_columns(self) -> list[LogRow]:
        a, n = self.answers, len(self.answers)
        none: list[Any] = [None] * n
        by_ml = a.by_ml.tolist()
        factors = a.contributing_factors or none
        return rows_from_columns(
            {
                "request_id": a.request_ids,
                "booking_id": self.context.booking_ids or none,
                "driver_id": self.context.driver_ids or none,
                "family": repeat(self.family, n),
                "features": rows_as_json(self.features),
                "prediction": a.prediction.tolist(),
                "confidence": np.round(a.confidence, 6).tolist(),
                "risk_level": a.risk_level or none,
                "contributing_factors": factors_as_json(factors),
                # Fallback rows carry "fallback" as their model version.
                "model_version": a.versions(),
                "latency_ms": repeat(a.latency_ms, n),
                "decision": list(map(_text, a.decision.tolist())),
                "served_by": [_ML_TEXT if m else _FALLBACK_TEXT for m in by_ml],
                "rollout_percentage": repeat(self.rollout_percentage, n),
                "ml_prediction": _nan_to_none(a.ml_prediction, n),
                "fallback_prediction": _nan_to_none(a.fallback_prediction, n),
                "schema_id": repeat(self.schema_id, n),
                "arm": a.arm or none,
                "challenger_version": repeat(a.challenger_version if a.arm else None, n),
                "challenger_prediction": _nan_to_none(a.challenger_prediction, n),
                "created_at": repeat(a.created_at, n),
                "updated_at": repeat(a.created_at, n),
            }
        )


def _text(decision: str) -> str:
    """A decision as plain str (see ``_DECISION_TEXT``); a word it does not know, as given."""
    return _DECISION_TEXT.get(decision, decision)


_new_row = tuple.__new__  # LogRow from a tuple in field order, without NamedTuple's keywords


def _row_json(X: np.ndarray) -> str:
    """``json.dumps`` of the first row of X, the same text: ``row_json`` for a float matrix."""
    if X.dtype != np.float64:
        return json.dumps(X[0].tolist())
    return row_json(X.tolist()[0])


def _first(values: np.ndarray | None) -> float | None:
    """``_nan_to_none(values, 1)[0]``."""
    if values is None:
        return None
    value = values.tolist()[0]
    return None if value != value else value


def _nan_to_none(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if v != v else v for v in values.tolist()]  # v != v: NaN
