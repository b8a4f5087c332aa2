"""The prediction log's row format, in one place: what a logged prediction carries, in order.

``LogRow``'s fields are the ``prediction_log`` columns written when a prediction is answered
(the outcome columns come later, from ``ia_continu.truth.actuals``), in the order of the
writer's INSERT. Everything that builds or reads a row goes through it: the writer's INSERT,
the predictor's answers (``rows_from_columns``), the spool and the dead-letter files.

Rows are tuples, not mappings, because the writer hands them straight to the driver's
executemany: going through SQLAlchemy's per-row parameter processing cost ~4x the CPU.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol


class LogRow(NamedTuple):
    request_id: str
    booking_id: str | None
    driver_id: str | None
    family: str
    features: str  # JSON text: the list of feature values
    prediction: float
    confidence: float
    risk_level: str | None
    contributing_factors: str | None  # JSON text: feature -> contribution
    model_version: str  # "fallback" on rows the fallback answered
    latency_ms: float
    decision: str  # a vocab.Decision
    served_by: str  # a vocab.ServedBy
    rollout_percentage: float
    ml_prediction: float | None  # None where ML did not score the row
    fallback_prediction: float | None  # None where the fallback did not score the row
    schema_id: int | None  # FeatureSchema.id: which feature each position of ``features`` is
    arm: str | None  # vocab.Arm while a challenger is live, else None
    challenger_version: str | None  # the live challenger's version, else None
    challenger_prediction: float | None  # the challenger's answer on a champion row it shadowed
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> LogRow:
        """A row given as column -> value (JSON columns as values): the form ``submit`` takes,
        and the one the dead-letter files show."""
        values: dict[str, Any] = {name: row.get(name) for name in COLUMNS}
        for name in JSON_COLUMNS:
            if values[name] is not None:
                values[name] = json.dumps(values[name])
        return cls._make(values[name] for name in COLUMNS)

    def readable(self) -> dict[str, Any]:
        """The mapping ``from_mapping`` takes (JSON columns decoded, times as ISO text)."""
        out = self._asdict()
        for name in JSON_COLUMNS:
            if isinstance(out[name], str):
                with contextlib.suppress(ValueError):  # else kept as text, as it was sent
                    out[name] = json.loads(out[name])
        for name in TIMESTAMP_COLUMNS:
            if isinstance(out[name], datetime):
                out[name] = out[name].isoformat()
        return out


COLUMNS: tuple[str, ...] = LogRow._fields
JSON_COLUMNS = ("features", "contributing_factors")
TIMESTAMP_COLUMNS = ("created_at", "updated_at")
# The timestamps close every row: the writer formats them for SQLite by position.
FIRST_TIMESTAMP = len(COLUMNS) - len(TIMESTAMP_COLUMNS)
assert COLUMNS[FIRST_TIMESTAMP:] == TIMESTAMP_COLUMNS


def rows_from_columns(columns: Mapping[str, Iterable[Any]]) -> list[LogRow]:
    """Columns by name (one iterable per ``LogRow`` field, JSON columns encoded) -> rows.

    The caller names its columns; their order is ``LogRow``'s alone.
    """
    if columns.keys() != set(COLUMNS):
        missing, extra = set(COLUMNS) - columns.keys(), columns.keys() - set(COLUMNS)
        raise ValueError(f"log columns: missing {sorted(missing)}, unknown {sorted(extra)}")
    return list(map(LogRow._make, zip(*(columns[name] for name in COLUMNS), strict=True)))


class RowSource(Protocol):
    """What ``PredictionLogWriter.submit_chunk`` takes: rows built later, in its thread."""

    def __len__(self) -> int: ...

    def rows(self) -> list[LogRow]: ...
