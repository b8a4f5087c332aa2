"""api/batch.py reads a /predict/batch body on a typed msgspec path or on the reference path
(the standard library's parser and matrix_from): both must give the same rows, or the same
refusal with the same message, for every body.

A body with one extra key (``"_": 0``) is the same request to the reference path (unknown keys
are ignored) but is refused by the typed decoders (unknown fields forbidden): comparing a body
with its twin compares the two paths on the same content.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi import HTTPException

from api.batch import _CELLS, _NUMBERS, answer_body, read_batch
from ia_continu.errors import InvalidInput
from ia_continu.families import get_family
from ia_continu.serve.answers import Answers
from ia_continu.vocab import Decision

CLASSIFICATION = get_family("classification")
BIKES = get_family("bike_traffic")  # a declared model: categories, booleans, rows by name


def _twin(body: str) -> str:
    """The same object with one unknown key more (the reference path ignores it)."""
    assert body.lstrip().startswith("{"), body
    return '{"_": 0, ' + body.lstrip()[1:] if body.strip() != "{}" else '{"_": 0}'


def _outcome(body: str | bytes, family, max_rows: int = 100):
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        batch = read_batch(raw, family, max_rows)
    except InvalidInput as exc:
        return ("422", str(exc))
    except HTTPException as exc:
        return (str(exc.status_code), exc.detail)
    c = batch.context
    return ("ok", batch.X.tolist(), batch.X.dtype.str, c.request_ids, c.booking_ids, c.driver_ids)


HUGE = "9" * 30
NUMERIC_BODIES = [
    '{"features": [[0.5, -1.2], [0.1, 0.2]]}',
    '{"features": [[1, 2], [3, 4]]}',  # integers: floats on the typed path
    '{"features": [[0.5, 1]], "request_ids": ["a"], "booking_ids": null}',
    '{"features": [[0.5, 1], [0.2, 0.3]], "request_ids": [null, "b"], "driver_ids": ["d", "e"]}',
    '{"features": [[9223372036854775807, 1]]}',  # int64's edge
    '{"features": [[9223372036854775808, 1]]}',
    '{"features": [[18446744073709551616, 1]]}',
    f'{{"features": [[{HUGE}, 1]]}}',
    f'{{"features": [[0.5, {HUGE}]]}}',
    '{"features": [[1e13, 1]]}',  # beyond the feature bound
    '{"features": [[1e400, 1]]}',  # infinity on the reference path
    '{"features": [[NaN, 1]]}',
    '{"features": [[true, 0.5]]}',
    '{"features": [[true, false]]}',
    '{"features": [[0.5, 1], [0.5]]}',  # ragged
    '{"features": [[0.5, 1, 2]]}',  # too many columns
    '{"features": [[]]}',
    '{"features": []}',
    '{"features": [0.5, 1]}',  # one row, not a list of rows
    '{"features": [["0.5", 1]]}',
    '{"features": [{"feature1": 0.5, "feature2": 1}]}',
    '{"features": null}',
    '{"features": [[0.5, 1]], "request_ids": ["a", "b"]}',  # one id per row
    '{"features": [[0.5, 1]], "request_ids": [1]}',
    '{"features": [[0.5, 1]], "request_ids": [""]}',
    '{"features": [[0.5, 1]], "request_ids": ["' + "x" * 101 + '"]}',
    '{"features": [[0.5, 1]], "request_ids": ["a\\u0000b"]}',
    '{"features": [[0.5, 1]], "request_ids": ["a\\ud800"]}',  # lone surrogate
    '{"features": [[0.5, 1]], "booking_ids": "b"}',
    '{"features": [[0.5, 1]], "features": [[0.1, 0.2]]}',  # last one wins, on both paths
    '{"features": [[0.5, 1]] , "driver_ids": [["d"]]}',
    '{"request_ids": ["a"]}',
    "{}",
]


@pytest.mark.parametrize("body", NUMERIC_BODIES)
def test_a_builtin_family_batch_reads_the_same_on_both_paths(body):
    typed, reference = _outcome(body, CLASSIFICATION), _outcome(_twin(body), CLASSIFICATION)
    assert typed == reference


def test_the_typed_path_is_the_one_taken_for_the_common_body():
    # Otherwise the comparison above would compare the reference path with itself.
    decoded = _NUMBERS.decode(b'{"features": [[1, 0.5]], "request_ids": ["a"]}')
    assert decoded.features == [[1.0, 0.5]] and decoded.request_ids == ["a"]
    assert _CELLS.decode(b'{"features": [{"hour": 1}]}').features == [{"hour": 1}]


BIKE_ROW = {"hour": 8, "weekday": 1, "weather": "rain", "holiday": False, "counter": "station"}
DECLARED_BODIES = [
    json.dumps({"features": [BIKE_ROW, {**BIKE_ROW, "hour": 17}]}),
    json.dumps({"features": [[8, 1, "rain", False, "station"]]}),
    json.dumps({"features": [[8.0, 1, "rain", 0, "station"]]}),
    json.dumps({"features": [{**BIKE_ROW, "weather": "fog"}]}),
    json.dumps({"features": [{**BIKE_ROW, "hour": 24}]}),
    json.dumps({"features": [{k: v for k, v in BIKE_ROW.items() if k != "holiday"}]}),
    json.dumps({"features": [{**BIKE_ROW, "speed": 3}]}),
    json.dumps({"features": [{**BIKE_ROW, "hour": None}]}),
    json.dumps({"features": [[8, 1, "rain", False]]}),
    json.dumps({"features": [[[8]]]}),
    json.dumps({"features": [[8, 1, ["rain"], False, "station"]]}),  # no category: a 422
    json.dumps({"features": [{**BIKE_ROW, "counter": {"id": 3}}]}),
    '{"features": [{"hour": ' + HUGE + "}]}",
    json.dumps({"features": [BIKE_ROW], "request_ids": ["r"]}),
    json.dumps({"features": []}),
]


@pytest.mark.parametrize("body", DECLARED_BODIES)
def test_a_declared_model_batch_reads_the_same_on_both_paths(body):
    assert _outcome(body, BIKES) == _outcome(_twin(body), BIKES)


def test_a_list_or_an_object_is_no_category():
    for cell in (["rain"], {"id": 3}):
        outcome = _outcome(json.dumps({"features": [{**BIKE_ROW, "weather": cell}]}), BIKES)
        assert outcome[0] == "422" and "is not one of 'clear'" in outcome[1], outcome


@pytest.mark.parametrize("twin", [False, True])
def test_too_many_rows_is_a_413_with_the_same_message(twin):
    body = json.dumps({"features": [[0.5, 1]] * 3})
    outcome = _outcome(_twin(body) if twin else body, CLASSIFICATION, max_rows=2)
    assert outcome == ("413", "3 rows: at most 2 per call")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"features": [[0.5, 1]]} trailing',
        "\ufeff".encode() + b'{"features": [[0.5, 1]]}',  # BOM: the standard parser takes it
        '{"features": [[0.5, 1]]}'.encode("utf-16"),  # so does it UTF-16
        b'{"features": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"features": [[0.5, 1]], "x": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"features": [[' + b"9" * 5000 + b", 1]]}",
        b'{"features": [[0.5, 1]], "request_ids": ["\xff"]}',
        b"[[0.5, 1]]",
    ],
)
def test_bodies_only_the_standard_parser_reads_get_its_answer(raw):
    outcome = _outcome(raw, CLASSIFICATION)
    try:
        payload = json.loads(raw)
    except RecursionError:
        assert outcome == ("422", "body is not valid JSON: nested too deeply")
        return
    except ValueError as exc:
        assert outcome == ("422", f"body is not valid JSON: {exc}")
        return
    if isinstance(payload, dict) and "features" in payload:  # read as its UTF-8 copy is
        assert outcome == _outcome(json.dumps(payload), CLASSIFICATION)
        assert outcome[0] == "ok"
    else:
        assert outcome == ("422", "body must be an object with a 'features' list of rows")


def _answers(
    prediction: list[float], confidence: list[float], by_ml: list[bool] | None = None
) -> Answers:
    from datetime import datetime

    n = len(prediction)
    return Answers(
        request_ids=[f"r{i}" for i in range(n)],
        prediction=np.array(prediction),
        confidence=np.array(confidence),
        by_ml=np.array(by_ml) if by_ml is not None else np.ones(n, bool),
        decision=np.full(n, Decision.ml, dtype=object),
        model_version="3",
        latency_ms=0.1,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901),
    )


def test_the_answer_is_the_json_the_columns_say():
    body = json.loads(answer_body(_answers([1.0, 0.0], [0.91234567, 0.5]), CLASSIFICATION))
    assert body == {
        "count": 2,
        "model_version": "3",
        "timestamp": "2026-01-02T03:04:05.678901Z",
        "request_ids": ["r0", "r1"],
        "predictions": [1, 0],
        "confidence": [0.912346, 0.5],
        "served_by": ["ml", "ml"],
        "decision": ["ml", "ml"],
        "risk_level": None,
    }


@pytest.mark.parametrize(
    ("by_ml", "served_by", "version"),
    [
        ([True, False, True], ["ml", "fallback", "ml"], "3"),
        ([False, False, False], ["fallback"] * 3, None),
    ],
)
def test_who_answered_each_row(by_ml, served_by, version):
    answers = _answers([1.0, 0.0, 1.0], [0.9, 0.8, 0.7], by_ml)
    body = json.loads(answer_body(answers, CLASSIFICATION))
    assert body["served_by"] == served_by and body["model_version"] == version


@pytest.mark.parametrize("column", ["prediction", "confidence"])
def test_a_non_finite_answer_is_refused_not_sent_as_null(column):
    values = {"prediction": [1.0, 0.0], "confidence": [0.9, 0.8]}
    values[column][1] = float("nan")
    with pytest.raises(InvalidInput, match="no finite prediction"):
        answer_body(_answers(values["prediction"], values["confidence"]), CLASSIFICATION)
