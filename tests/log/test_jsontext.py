"""The log's feature text made in bulk is json.dumps' text, byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ia_continu.log.jsontext import factor_json, factors_as_json, rows_as_json


@pytest.mark.parametrize("width", [1, 2, 5, 12])
def test_rows_read_as_json_dumps_writes_them(width):
    rng = np.random.default_rng(width)
    n = 20_000
    sign = rng.choice([-1.0, 1.0], (n, width))
    # Magnitudes from 1e-8 to 1e20: both sides of where repr switches to an exponent.
    X = sign * rng.random((n, width)) * 10.0 ** rng.integers(-8, 21, (n, width))
    X[rng.random((n, width)) < 0.05] = 0.0
    X[rng.random((n, width)) < 0.01] = -0.0
    X[:, 0] = np.where(rng.random(n) < 0.3, rng.integers(-50, 50, n), X[:, 0])
    X[:6, 0] = [1e-4, 0.0001000001, 9.999999999999999e15, 1e16, 5e-324, 1.7976931348623157e308]
    assert rows_as_json(X) == [json.dumps(row) for row in X.tolist()]


@pytest.mark.parametrize("shape", [(0, 2), (1, 2), (2, 3), (3, 0), (4, 1)])
def test_small_and_empty_matrices(shape):
    X = np.arange(np.prod(shape), dtype=float).reshape(shape) / 7
    assert rows_as_json(X) == [json.dumps(row) for row in X.tolist()]


def test_other_dtypes_are_written_one_row_at_a_time():
    for X in (np.arange(12).reshape(4, 3), np.array([[1.5, 2.0]] * 4, dtype=np.float32)):
        assert rows_as_json(X) == [json.dumps(row) for row in X.tolist()]


def test_contributing_factors_read_as_json_dumps_writes_them():
    """The delay model's factors for a batch, as its scorer makes them, and every case the
    bulk path must hand back to json.dumps: other keys, other numbers, empty and missing."""
    from ia_continu.families.delay import DelayFamily

    family = DelayFamily()
    X, y = family.sample(5000, rng=np.random.default_rng(3))
    pipeline = family.build_pipeline().fit(X, y)
    family.after_fit(pipeline, y, pipeline.predict(X))
    form = family.serving_form(pipeline)
    assert form is not None
    factors = list(family.scorer_from_form(form)(X).contributing_factors)
    factors[3], factors[7] = None, {}
    cases = [
        factors,
        [{"a": -0.0}, {"b": 1e-5}, {"c": 2.0}],  # 1e-05: where repr writes an exponent
        [{"é": 1.0}] * 4,  # json.dumps escapes non-ASCII
        [{'q"': 1.0}, {"back\\slash": 2.0}, {"{brace}": 3.0}, {"a": 1.0}],
        [{"a": 1}] * 4,  # an int
        [{"a": float("nan")}] * 4,
        [{"a": 1e17}] * 4,
        [{"a,b": 1.5, "c:d": -2.25, "e f": 0.001}] * 4,
        [None, None, {"a": 1.5}, None],
        [],
    ]
    for case in cases:
        assert factors_as_json(case) == [None if f is None else json.dumps(f) for f in case]
        for one in case:  # a one-row call's factors
            if one is not None:
                assert factor_json(one) == json.dumps(one)
