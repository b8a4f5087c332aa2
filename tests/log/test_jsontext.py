"""The log's feature text made in bulk is json.dumps' text, byte for byte."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ia_continu.log.jsontext import rows_as_json


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
