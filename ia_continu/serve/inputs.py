"""Turn request payloads into validated feature matrices, with errors a person can act on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ia_continu.families.base import InvalidFeatures, ModelFamily


def row_matrix(features: Sequence[Any] | Mapping[str, Any], family: ModelFamily) -> np.ndarray:
    """One request row (by name, or in the declared order) as a validated (1, n) matrix."""
    if family.encodes_cells:
        return family.encode_rows([features])
    X = np.array([row_from(features, family)], dtype=float)
    family.validate(X)
    return X


def _number(name: object, value: Any) -> float:
    # bool is an int in Python: true is not a number of a built-in family's features.
    if isinstance(value, bool) or not isinstance(value, int | float):
        what = "text" if isinstance(value, str) else type(value).__name__
        raise InvalidFeatures(f"features[{name!r}]: {what} is not a number")
    return float(value)


def row_from(features: Sequence[Any] | Mapping[str, Any], family: ModelFamily) -> list[float]:
    if isinstance(features, Mapping):
        names = family.feature_names
        unknown = sorted(set(features) - set(names))
        missing = [n for n in names if n not in features]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unknown:
                parts.append(f"unknown {unknown}")
            raise InvalidFeatures(f"features by name: {'; '.join(parts)}; expected {list(names)}")
        return [_number(n, features[n]) for n in names]
    return [_number(i, v) for i, v in enumerate(features)]


def matrix_from(rows: object, family: ModelFamily) -> np.ndarray:
    """A list of rows -> a float matrix, strictly: numbers only, all rows the same length.
    A declared model's rows may also be objects by feature name, with categories as text."""
    if family.encodes_cells:
        if not isinstance(rows, list) or not rows:
            raise InvalidFeatures("'features' must be a non-empty list of rows")
        return family.encode_rows(rows)
    if not isinstance(rows, list) or not rows:
        raise InvalidFeatures("'features' must be a non-empty list of rows (lists of numbers)")
    try:
        X = np.array(rows)
    except (ValueError, OverflowError, RecursionError):  # ragged, or nested past numpy's 64 dims
        raise InvalidFeatures(
            f"every row must be a list of {family.n_features} numbers, all rows the same length"
        ) from None
    if X.dtype.kind not in "iuf" or X.ndim != 2:
        if X.ndim == 1 and X.dtype.kind in "iuf":
            raise InvalidFeatures("'features' must be a list of rows, e.g. [[0.5, 1.2]]")
        # object dtype: something not a number, or an integer too large for 64 bits
        raise InvalidFeatures(
            f"every row must be a list of {family.n_features} numbers of a sensible size"
        )
    X = X.astype(float, copy=False)
    family.validate(X)
    return X
