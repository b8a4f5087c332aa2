"""Turn request payloads into validated feature matrices, with errors a person can act on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ia_continu.families.base import InvalidFeatures, ModelFamily


def row_from(features: Sequence[float] | Mapping[str, float], family: ModelFamily) -> list[float]:
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
        return [float(features[n]) for n in names]
    return [float(v) for v in features]


def matrix_from(rows: object, family: ModelFamily) -> np.ndarray:
    """A list of rows -> a float matrix, strictly: numbers only, all rows the same length."""
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
