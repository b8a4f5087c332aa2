"""record_actuals on a real database (SQLite and PostgreSQL): values, idempotence, unknown ids."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from ia_continu.errors import InvalidActual
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import PredictionLog
from ia_continu.truth.actuals import RecordedActuals, record_actuals
from tests.factories import insert_rows, prediction_rows


def _rows(engine) -> dict[str, PredictionLog]:
    with session_scope(engine) as s:
        return {r.request_id: r for r in s.scalars(select(PredictionLog))}


@pytest.fixture
def delay_settings(settings_factory):
    return settings_factory(family="delay", delay_tolerance_minutes=3.0)


def test_delay_actuals_fill_error_and_tolerance(delay_settings, engine):
    rows = prediction_rows("delay", 4, rng=np.random.default_rng(0))
    for row, p in zip(rows, [10.0, 10.0, 10.0, 5.0], strict=True):
        row["prediction"] = p
    insert_rows(engine, rows)
    items = [
        {"request_id": "r0", "actual": 12.5},  # error 2.5 < 3: accurate
        {"request_id": "r1", "actual": 13.0},  # error 3.0, not < 3
        {"booking_id": "b-r2", "actual": 6.0},  # by booking id
        {"request_id": "nope", "actual": 1.0},
        {"booking_id": "b-nope", "actual": 1.0},
    ]
    with session_scope(engine) as s:
        answer = record_actuals(s, delay_settings, items)
    assert answer == RecordedActuals(
        received=5, updated=3, unknown_request_ids=["nope"], unknown_booking_ids=["b-nope"]
    )
    got = _rows(engine)
    assert (got["r0"].actual, got["r0"].error, got["r0"].is_accurate) == (12.5, 2.5, True)
    assert (got["r1"].error, got["r1"].is_accurate) == (3.0, False)
    assert (got["r2"].actual, got["r2"].error, got["r2"].is_accurate) == (6.0, 4.0, False)
    assert got["r0"].actual_at is not None
    assert got["r3"].actual is None and got["r3"].actual_at is None

    # Idempotent: the same outcomes again change nothing but the timestamps.
    with session_scope(engine) as s:
        again = record_actuals(s, delay_settings, items)
    assert again.updated == 3
    after = _rows(engine)
    for rid in ("r0", "r1", "r2", "r3"):
        assert (after[rid].actual, after[rid].error, after[rid].is_accurate) == (
            got[rid].actual,
            got[rid].error,
            got[rid].is_accurate,
        )


def test_the_tolerance_is_the_setting(settings_factory, engine):
    rows = prediction_rows("delay", 2, rng=np.random.default_rng(5))
    rows[0]["prediction"], rows[1]["prediction"] = 10.0, 10.0
    insert_rows(engine, rows)
    items = [{"request_id": "r0", "actual": 10.9}, {"request_id": "r1", "actual": 8.5}]
    with session_scope(engine) as s:
        record_actuals(s, settings_factory(family="delay", delay_tolerance_minutes=1.0), items)
    got = _rows(engine)
    assert (got["r0"].is_accurate, got["r1"].is_accurate) == (True, False)  # 0.9 < 1 <= 1.5


def test_classification_accuracy_is_label_match(settings, engine):
    rows = prediction_rows("classification", 2, rng=np.random.default_rng(1))
    rows[0]["prediction"], rows[1]["prediction"] = 1.0, 0.0
    insert_rows(engine, rows)
    with session_scope(engine) as s:
        record_actuals(
            s, settings, [{"request_id": "r0", "actual": 1}, {"request_id": "r1", "actual": 1}]
        )
    got = _rows(engine)
    assert (got["r0"].is_accurate, got["r0"].error) == (True, 0.0)
    assert (got["r1"].is_accurate, got["r1"].error) == (False, 1.0)


def test_other_family_rows_are_not_touched(settings, engine):
    insert_rows(engine, prediction_rows("delay", 1, rng=np.random.default_rng(2)))
    with session_scope(engine) as s:  # settings serve classification
        answer = record_actuals(s, settings, [{"request_id": "r0", "actual": 1.0}])
    assert answer.updated == 0 and answer.unknown_request_ids == ["r0"]


def test_bulk_ten_thousand_actuals_last_value_wins(delay_settings, engine):
    rows = prediction_rows("delay", 10_000, rng=np.random.default_rng(3))
    insert_rows(engine, rows)
    items = [{"request_id": r["request_id"], "actual": 0.0} for r in rows]
    items += [{"request_id": "r7", "actual": 42.0}]  # a later correction of the same id
    with session_scope(engine) as s:
        answer = record_actuals(s, delay_settings, items)
    assert answer.updated == 10_000 and answer.received == 10_000
    got = _rows(engine)
    assert got["r7"].actual == 42.0
    assert got["r9999"].error == pytest.approx(abs(rows[9999]["prediction"]))


@pytest.mark.parametrize(
    "item",
    [
        {"actual": 1.0},
        {"request_id": "r0", "actual": float("nan")},
        {"request_id": "r0", "actual": "3"},
        {"request_id": "r0"},
    ],
)
def test_malformed_items_are_refused_before_any_write(settings, engine, item):
    with session_scope(engine) as s, pytest.raises(InvalidActual):
        record_actuals(s, settings, [item])
