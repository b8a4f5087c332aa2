"""The delay model's contributing factors: the same dicts for a batch as row by row."""

from __future__ import annotations

import numpy as np
import pytest

from ia_continu.families.delay import DESIGN, DelayFamily


def _reference(contributions: np.ndarray) -> list[dict[str, float]]:
    """The three largest contributions of each row, zeros left out, as the log keeps them."""
    out = []
    for row in contributions.tolist():
        top = sorted(range(len(row)), key=lambda j: -abs(row[j]))[:3]
        out.append({DESIGN[j]: round(row[j], 3) for j in top if round(row[j], 3) != 0.0})
    return out


@pytest.mark.parametrize("n", [1, 7, 8, 3000])
def test_factors_of_any_number_of_rows(n):
    rng = np.random.default_rng(n)
    # Distinct magnitudes (no ties in the ranking), most of them rounding to zero.
    contributions = rng.permuted(np.tile(np.arange(1, len(DESIGN) + 1) * 1.7, (n, 1)), axis=1)
    contributions *= rng.choice([-1.0, 1.0], contributions.shape)
    contributions[rng.random(contributions.shape) < 0.6] = 0.0004
    factors = DelayFamily._scores(np.zeros(n), contributions, 0.9).contributing_factors
    assert factors == _reference(contributions)
    assert [list(f) for f in factors] == [list(f) for f in _reference(contributions)]  # order
