"""The log row format: one column list, named once, matching the table."""

from __future__ import annotations

from datetime import datetime

import pytest

from ia_continu.log.rows import COLUMNS, LogRow, rows_from_columns
from ia_continu.store.tables import PredictionLog

NOW = datetime(2026, 1, 1, 12, 0, 0, 123456)
MAPPING = dict(
    request_id="r1",
    booking_id="b1",
    driver_id=None,
    family="delay",
    features=[18.0, 8.0, 1.0, 2.0, 0.8],
    prediction=12.5,
    confidence=0.7,
    risk_level="medium",
    contributing_factors={"distance_km": 4.0},
    model_version="3",
    latency_ms=0.05,
    decision="ml",
    served_by="ml",
    rollout_percentage=100.0,
    ml_prediction=12.5,
    fallback_prediction=9.0,
    schema_id=3,
    arm="challenger",
    challenger_version="4",
    challenger_prediction=None,
    created_at=NOW,
    updated_at=NOW,
)


def test_every_log_column_is_a_prediction_log_column():
    table = set(PredictionLog.__table__.columns.keys())
    assert set(COLUMNS) <= table
    # What is left is filled later: the id, and the outcome when it is known.
    assert table - set(COLUMNS) == {"id", "actual", "error", "is_accurate", "actual_at"}


def test_a_mapping_round_trips_with_json_columns_encoded():
    row = LogRow.from_mapping(MAPPING)
    assert row.features == "[18.0, 8.0, 1.0, 2.0, 0.8]"
    assert row.contributing_factors == '{"distance_km": 4.0}'
    assert row.readable() == {
        **MAPPING,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }


def test_columns_are_matched_by_name_not_by_position():
    columns = {
        name: [value]
        for name, value in reversed(list(LogRow.from_mapping(MAPPING)._asdict().items()))
    }
    (row,) = rows_from_columns(columns)
    assert row == LogRow.from_mapping(MAPPING)


def test_a_missing_or_unknown_column_is_refused():
    columns = {name: [None] for name in COLUMNS if name != "decision"}
    with pytest.raises(ValueError, match=r"missing \['decision'\]"):
        rows_from_columns({**columns, "decison": [None]})
