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


def test_one_row_scoring_is_the_batch_scoring_row_by_row():
    """Every /predict scores one row by its own short path: each row's answer, risk band and
    factors (in order) are those of the same rows scored together. (The prediction to the
    last bits only: BLAS sums a matrix's products in another order than one row's.)"""
    family = DelayFamily()
    X, y = family.sample(3000, rng=np.random.default_rng(5))
    pipeline = family.build_pipeline().fit(X[:2000], y[:2000])
    family.after_fit(pipeline, y[2000:], pipeline.predict(X[2000:]))
    form = family.serving_form(pipeline)
    assert form is not None
    score = family.scorer_from_form(form)
    rows = X[2000:]
    together = score(rows)
    assert len(rows) > 1
    for i in range(len(rows)):
        one = score(rows[i : i + 1])
        assert one.prediction[0] == pytest.approx(together.prediction[i], rel=1e-12)
        assert one.confidence.tolist() == together.confidence[i : i + 1].tolist()
        assert one.risk_level == together.risk_level[i : i + 1]
        assert one.contributing_factors == together.contributing_factors[i : i + 1]
        assert list(one.contributing_factors[0]) == list(together.contributing_factors[i])


def test_a_batch_builds_its_factors_only_when_read_and_the_log_gets_them():
    # The answer to /predict/batch does not carry the factors: scoring a batch leaves them
    # unbuilt, and the log's rows (built in the writer's thread) get the same dicts.
    from ia_continu.families.delay import TopFactors
    from ia_continu.log.jsontext import factors_as_json

    rng = np.random.default_rng(3)
    contributions = rng.normal(0, 5, (500, len(DESIGN)))
    factors = DelayFamily._scores(np.zeros(500), contributions, 0.9).contributing_factors
    assert isinstance(factors, TopFactors) and factors._rows is None and len(factors) == 500
    assert factors._rows is None  # len() builds nothing
    assert factors_as_json(factors) == factors_as_json(_reference(contributions))
    assert factors._rows is not None and factors == _reference(contributions)
    assert (
        factors[3] == _reference(contributions)[3] and factors[:2] == _reference(contributions)[:2]
    )


def test_tied_contributions_keep_the_features_order_on_both_paths():
    """Equal magnitudes are ranked in the features' order, by one row's Python path and by a
    batch's stable argsort alike (numpy's default sort is not stable on every CPU)."""
    from ia_continu.families.delay import _top_factors, _top_factors_one

    rows = np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0, -0.7, 0.7],  # weekend and night tied, opposite signs
            [2.5, -2.5, 2.5, 0.0, 0.0, 0.0, 2.5],  # four tied for three places
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [1.0004, 0.0, 0.0, 0.0, 0.0, 0.0, -0.0004],  # rounds to 1.0, and to -0.0 (dropped)
        ]
    )
    expected = [
        {"weekend": -0.7, "night": 0.7},
        {DESIGN[0]: 2.5, DESIGN[1]: -2.5, DESIGN[2]: 2.5},
        {},
        {DESIGN[0]: 1.0},
    ]
    batch = _top_factors(rows)
    one_by_one = [_top_factors_one(row) for row in rows.tolist()]
    assert batch == one_by_one == expected
    assert [list(f) for f in batch] == [list(f) for f in one_by_one] == [list(f) for f in expected]
