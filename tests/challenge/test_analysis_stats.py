"""The live comparison's tests against scipy's own on known inputs, and the three one-sided
answers (not worse, worse, neither) around the non-inferiority margin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from ia_continu.challenge import stats


def test_two_proportions_matches_the_chi_square_and_the_wald_interval():
    # 2x2 table: challenger right 430 of 500, champion right 400 of 500.
    out = stats.two_proportions(430, 500, 400, 500, margin=0.0, alpha=0.05)
    table = np.array([[430, 70], [400, 100]])
    assert out.p_value == pytest.approx(sp.chi2_contingency(table, correction=False).pvalue)
    assert out.gain == pytest.approx(0.06)
    se = math.sqrt(0.86 * 0.14 / 500 + 0.8 * 0.2 / 500)
    assert out.p_not_worse == pytest.approx(sp.norm.sf(0.06 / se))
    assert out.p_worse == pytest.approx(sp.norm.cdf(0.06 / se))
    assert (out.low, out.high) == pytest.approx((0.06 - 1.6448536 * se, 0.06 + 1.6448536 * se))
    assert out.p_not_worse < 0.05 < out.p_worse


def test_two_proportions_margin_turns_a_small_loss_into_not_worse():
    # 1 point worse: significant without margin on 20,000 rows a side, fine within 5 points.
    strict = stats.two_proportions(15800, 20000, 16000, 20000, margin=0.0, alpha=0.05)
    assert strict.p_worse < 0.05
    lenient = stats.two_proportions(15800, 20000, 16000, 20000, margin=0.05, alpha=0.05)
    assert lenient.p_not_worse < 0.05 and lenient.p_worse > 0.5


def test_mcnemar_is_the_exact_binomial_on_discordant_pairs():
    out = stats.mcnemar(25, 10, 400, margin=0.0, alpha=0.05)
    assert out.p_value == pytest.approx(sp.binomtest(25, 35, 0.5).pvalue)
    assert out.p_not_worse == pytest.approx(sp.binomtest(25, 35, 0.5, alternative="greater").pvalue)
    assert out.p_worse == pytest.approx(sp.binomtest(25, 35, 0.5, alternative="less").pvalue)
    assert out.gain == pytest.approx(15 / 400)
    # No discordant pair: nothing to tell them apart.
    same = stats.mcnemar(0, 0, 300, margin=0.0, alpha=0.05)
    assert same.p_value == 1.0 and same.p_not_worse == 0.5 == same.p_worse


def test_welch_matches_scipy_with_the_margin_as_a_shift():
    rng = np.random.default_rng(1)
    s1, s0 = -np.abs(rng.normal(0, 2.0, 300)), -np.abs(rng.normal(0, 2.5, 280))
    out = stats.welch(s1, s0, margin=0.1, alpha=0.05)
    assert out.p_value == pytest.approx(sp.ttest_ind(s1, s0, equal_var=False).pvalue)
    ref = sp.ttest_ind(s1 + 0.1, s0, equal_var=False, alternative="greater")
    assert out.p_not_worse == pytest.approx(ref.pvalue)
    ci = sp.ttest_ind(s1, s0, equal_var=False).confidence_interval(0.90)
    assert (out.low, out.high) == pytest.approx((ci.low, ci.high))


def test_paired_matches_scipy_ttest_rel():
    rng = np.random.default_rng(2)
    champion = rng.normal(0, 1, 200) ** 2
    challenger = champion * 0.8 + rng.normal(0, 0.05, 200) ** 2
    d = -challenger - (-champion)
    out = stats.paired(d, margin=0.0, alpha=0.05)
    assert out.p_value == pytest.approx(sp.ttest_rel(-challenger, -champion).pvalue)
    ref = sp.ttest_rel(-challenger, -champion, alternative="greater").pvalue
    assert out.p_not_worse == pytest.approx(ref)
    assert out.p_not_worse < 0.05


def test_constant_scores_do_not_answer_nan():
    ones = np.ones(50)
    out = stats.welch(ones, ones, margin=0.0, alpha=0.05)
    assert (out.p_value, out.p_not_worse, out.p_worse) == (1.0, 0.5, 0.5)
    better = stats.paired(np.full(50, 0.5), margin=0.0, alpha=0.05)
    assert better.p_not_worse == 0.0 and better.p_worse == 1.0


def test_bootstrap_of_a_mean_agrees_with_the_t_test():
    rng = np.random.default_rng(3)
    s1, s0 = rng.normal(0.3, 1, 400), rng.normal(0.0, 1, 400)
    out = stats.bootstrap(
        lambda i1, i0: float(s1[i1].mean() - s0[i0].mean()),
        400,
        400,
        is_paired=False,
        margin=0.0,
        alpha=0.05,
    )
    ref = stats.welch(s1, s0, margin=0.0, alpha=0.05)
    assert out.gain == pytest.approx(ref.gain)
    assert out.low == pytest.approx(ref.low, abs=0.03)
    assert out.high == pytest.approx(ref.high, abs=0.03)
    assert out.p_not_worse < 0.01 and out.p_worse > 0.99
    # Seeded: the same rows give the same answer.
    again = stats.bootstrap(
        lambda i1, i0: float(s1[i1].mean() - s0[i0].mean()),
        400,
        400,
        is_paired=False,
        margin=0.0,
        alpha=0.05,
    )
    assert again == out


def test_the_sequential_p_value_is_the_mixture_likelihood_ratio():
    gain, se, margin, tau = 0.03, 0.01, 0.0, 0.02
    v, t2 = se**2, tau**2
    ratio = math.sqrt(v / (v + t2)) * math.exp(t2 * gain**2 / (2 * v * (v + t2)))
    assert stats.sequential_p(gain, se, margin, tau) == pytest.approx(1 / ratio)
    # Around the margin: the same gain tested against -0.02.
    shifted = math.sqrt(v / (v + t2)) * math.exp(t2 * 0.05**2 / (2 * v * (v + t2)))
    assert stats.sequential_p(gain, se, 0.02, tau) == pytest.approx(1 / shifted)
    assert stats.sequential_p(0.0, se, 0.0, tau) == 1.0  # no evidence at all
    assert stats.sequential_p(0.1, 0.0, 0.0, tau) == 0.0  # no variance: certain


def test_repeated_looks_keep_the_sequential_error_at_alpha():
    """Equal arms judged after every 50 outcomes per arm from 200 to 2,000 (37 looks): the
    fixed-sample test is ever significant far more often than alpha, the sequential one
    not. Seeded: the same draws every run."""
    rng = np.random.default_rng(8)
    fixed = sequential = 0
    repeats = 400
    for _ in range(repeats):
        r1, r0 = rng.random(2000) < 0.8, rng.random(2000) < 0.8
        hit_fixed = hit_seq = False
        for n in range(200, 2001, 50):
            out = stats.two_proportions(
                int(r1[:n].sum()), n, int(r0[:n].sum()), n, margin=0.0, alpha=0.05
            )
            hit_fixed |= min(out.p_not_worse, out.p_worse) < 0.05
            tau = out.se * math.sqrt(n / 200)
            hit_seq |= out.sequential_p(tau) < 0.05
        fixed += hit_fixed
        sequential += hit_seq
    assert fixed / repeats > 0.25
    assert sequential / repeats <= 0.05
