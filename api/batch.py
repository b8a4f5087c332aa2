"""The body of ``POST /predict/batch``, read and answered for 10,000 rows at a time.

Two ways in, one set of rules. The common body (an object of ``features`` and the optional id
columns, nothing else) is decoded by msgspec into typed lists, and numbers-only rows become a
float matrix in one numpy call: about 4x cheaper than ``json.loads`` and numpy's type
inference. Anything else (a body msgspec refuses or does not type exactly: NaN, a BOM,
booleans among numbers, an unknown key, a huge integer...) takes the reference path, the
standard library's parser and ``matrix_from``, so that what a body is answered (rows or the
message of a 4xx) never depends on which way it came in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from fastapi import HTTPException, status

from api.schemas import first_invalid_identifier
from ia_continu.errors import InvalidFeatures, InvalidInput
from ia_continu.families import ModelFamily
from ia_continu.serve.answers import Answers, Context
from ia_continu.serve.inputs import matrix_from
from ia_continu.vocab import ServedBy

_ID_COLUMNS = ("request_ids", "booking_ids", "driver_ids")
# What a declared model's cell may be (categories as text, booleans, numbers, null).
_Cell = int | float | str | bool | None


class _Numbers(msgspec.Struct, forbid_unknown_fields=True):
    """A built-in family's batch: rows of numbers (JSON integers arrive as floats)."""

    features: list[list[float]]
    request_ids: list[str | None] | None = None
    booking_ids: list[str | None] | None = None
    driver_ids: list[str | None] | None = None


class _Cells(msgspec.Struct, forbid_unknown_fields=True):
    """A declared model's batch: rows in the declared order or by name, values as sent."""

    features: list[list[_Cell] | dict[str, _Cell]]
    request_ids: list[str | None] | None = None
    booking_ids: list[str | None] | None = None
    driver_ids: list[str | None] | None = None


_NUMBERS = msgspec.json.Decoder(_Numbers)
_CELLS = msgspec.json.Decoder(_Cells)
_ENCODER = msgspec.json.Encoder()
# A float this large came from an integer that numpy would not have taken as a float64 on
# the reference path (or from a number that path refuses anyway): let that path decide.
_INT64_EDGE = 2.0**63


@dataclass(frozen=True, slots=True)
class Batch:
    X: np.ndarray  # validated, one row per prediction
    context: Context  # the id columns (None where not sent)


def read_batch(body: bytes, family: ModelFamily, max_rows: int) -> Batch:
    """The rows and ids of a ``/predict/batch`` body, validated; raises InvalidInput (422)
    or an HTTPException 413 (too many rows) with the same message on either path."""
    declared = family.encodes_cells
    try:
        typed: _Numbers | _Cells | None = (_CELLS if declared else _NUMBERS).decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        typed = None
    if typed is None:
        payload = _parse(body)
        rows = payload["features"]
        ids = {name: payload.get(name) for name in _ID_COLUMNS}
    else:
        rows = typed.features
        ids = {name: getattr(typed, name) for name in _ID_COLUMNS}
    if isinstance(rows, list) and len(rows) > max_rows:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"{len(rows)} rows: at most {max_rows} per call"
        )
    X = _numbers(rows) if isinstance(typed, _Numbers) else None
    if X is None:
        # Typed rows are exactly what the standard parser gives, except _Numbers' floats
        # (integers converted): those are read again from the body.
        X = matrix_from(_parse(body)["features"] if isinstance(typed, _Numbers) else rows, family)
    else:
        family.validate(X)
    return Batch(X, Context(**_id_columns(ids, len(X))))


def _parse(body: bytes) -> dict[str, Any]:
    """The reference parser: the standard library's, with its messages."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # incl. integers of 4,300+ digits
        raise InvalidInput(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict) or "features" not in payload:
        raise InvalidInput("body must be an object with a 'features' list of rows")
    return payload


def _numbers(rows: list[list[float]]) -> np.ndarray | None:
    """Rows of floats as a (n, k) matrix; None when the reference path must say why not
    (no rows, rows of different lengths, a number out of float64's integer range)."""
    try:
        X = np.array(rows, dtype=float)
    except ValueError:  # ragged
        return None
    if X.ndim != 2 or not len(X) or (X.size and np.abs(X).max() >= _INT64_EDGE):
        return None
    return X


def _id_columns(ids: dict[str, Any], n: int) -> dict[str, list[str | None] | None]:
    columns: dict[str, list[str | None] | None] = {}
    for name in _ID_COLUMNS:
        values = ids[name]
        if values is None:
            columns[name] = None
            continue
        if not isinstance(values, list) or len(values) != n:
            raise InvalidInput(f"'{name}' must be a list with one entry per row ({n})")
        # The same rule as /predict's Identifier: strings only (no int), 1..100 characters,
        # no control character or lone surrogate (a row the database would refuse).
        if (invalid := first_invalid_identifier(values)) is not None:
            raise InvalidInput(f"'{name}'[{invalid[0]}]: identifier {invalid[1]}")
        columns[name] = values
    return columns


def answer_body(answers: Answers, family: ModelFamily) -> bytes:
    """The JSON answer, built from the columns (no dict per row) and encoded by msgspec."""
    prediction, confidence, by_ml = answers.prediction, answers.confidence, answers.by_ml
    # msgspec writes NaN as null where the standard encoder refused it: refuse it here.
    if not (np.isfinite(prediction).all() and np.isfinite(confidence).all()):
        raise no_finite_answer()
    body = {
        "count": len(answers),
        "model_version": answers.model_version if by_ml.any() else None,
        "timestamp": answers.created_at.isoformat() + "Z",
        "request_ids": answers.request_ids,
        "predictions": family.labels(prediction),
        "confidence": confidence.round(6).tolist(),
        "served_by": _served_by(by_ml),
        "decision": answers.decision.tolist(),  # vocab.Decision members: strings in JSON
        "risk_level": answers.risk_level,  # None unless the family grades its answers
    }
    if answers.by_challenger is not None and answers.by_challenger.any():
        body["model_versions"] = answers.versions()  # a canary answered some of the rows
    return _ENCODER.encode(body)


def _served_by(by_ml: np.ndarray) -> list[str]:
    # One answerer for every row is the common case: no per-row choice to make then.
    if by_ml.all():
        return [ServedBy.ml] * len(by_ml)
    if not by_ml.any():
        return [ServedBy.fallback] * len(by_ml)
    return np.where(by_ml, ServedBy.ml, ServedBy.fallback).tolist()


def no_finite_answer() -> InvalidFeatures:
    # Bounded features and the predictor's guard (a non-finite ML answer falls back) keep
    # answers finite; if one still is not, refuse it rather than send `Infinity` (not JSON).
    return InvalidFeatures("no finite prediction for these features")
