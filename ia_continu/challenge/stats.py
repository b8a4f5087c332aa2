"""The statistical tests of the live comparison: pure functions of the two arms' numbers.

Every test answers in the same terms, the challenger's *gain* over the champion in the
test's units (positive: the challenger is better, whatever the metric's direction) and
three p-values around the non-inferiority ``margin`` m (same units):

- ``p_value``: two-sided, "no difference" (the textbook test, reported for the record);
- ``p_not_worse``: one-sided, rejects "the challenger is worse by more than m" (gain <= -m);
- ``p_worse``: one-sided, rejects "the challenger is no worse than m" (gain >= -m).

At most one of the two one-sided p-values is below an alpha < 0.5, so the verdict is never
ambiguous: not-worse -> advance, worse -> abort, neither -> hold. ``low``/``high`` is the
(1 - 2 alpha) interval of the gain: advance exactly when ``low > -m``.

Which test: two independent samples (canary: each request answered by one arm) get the
two-proportion z-test for an accuracy and Welch's t-test for a mean loss; paired rows
(shadow: both answers on the same request, one outcome) get McNemar's exact test on the
discordant pairs for an accuracy and the paired t-test for per-row loss differences. Any
other metric (R², F1, ...) is not a mean of per-row values: its gain is bootstrapped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_ROUNDS = 1000


@dataclass(frozen=True, slots=True)
class TestOutcome:
    test: str
    gain: float  # challenger better by this much (test units); > 0: challenger better
    p_value: float  # two-sided: no difference
    p_not_worse: float  # one-sided: rejects gain <= -margin
    p_worse: float  # one-sided: rejects gain >= -margin
    low: float  # (1 - 2 alpha) interval of the gain
    high: float
    se: float = math.nan  # standard error of the gain (what the sequential test reads)
    margin: float = 0.0  # the non-inferiority margin, in the test's units

    def sequential_p(self, tau: float) -> float:
        """The always-valid p-value of this gain against -margin (``sequential_p``)."""
        return sequential_p(self.gain, self.se, self.margin, tau)


def _z_tails(shifted: float, se: float) -> tuple[float, float]:
    """(p_not_worse, p_worse) for the z statistic of ``shifted`` = gain + margin."""
    z = shifted / se if se > 0 else _certain(shifted)
    return float(stats.norm.sf(z)), float(stats.norm.cdf(z))


def _certain(shifted: float) -> float:
    """No variance at all: the sign of the difference is certain."""
    return math.inf if shifted > 0 else -math.inf if shifted < 0 else 0.0


def _constant(test: str, gain: float, margin: float) -> TestOutcome:
    """Every row scored the same in each arm (scipy's t-tests answer NaN there)."""
    p_not_worse, p_worse = _z_tails(gain + margin, 0.0)
    p_two = 1.0 if gain == 0 else 0.0
    return TestOutcome(test, gain, p_two, p_not_worse, p_worse, gain, gain, 0.0, margin)


def two_proportions(
    k1: int, n1: int, k0: int, n0: int, *, margin: float, alpha: float
) -> TestOutcome:
    """Challenger right on k1 of n1 rows, champion on k0 of n0 (independent samples).

    The two-sided p-value is the pooled z-test (the uncorrected chi-square on the 2x2
    table); the one-sided ones use the unpooled standard error, as non-inferiority tests
    of a difference of proportions do (Wald): pooling assumes the equality being shifted."""
    p1, p0 = k1 / n1, k0 / n0
    gain = p1 - p0
    pooled = (k1 + k0) / (n1 + n0)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_two = 1.0 if se0 == 0 else float(2 * stats.norm.sf(abs(gain) / se0))
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    p_not_worse, p_worse = _z_tails(gain + margin, se)
    z = float(stats.norm.isf(alpha))
    low, high = gain - z * se, gain + z * se
    return TestOutcome(
        "two-proportion z-test", gain, p_two, p_not_worse, p_worse, low, high, se, margin
    )


def mcnemar(b: int, c: int, n: int, *, margin: float, alpha: float) -> TestOutcome:
    """Paired accuracy on n rows: b where only the challenger is right, c where only the
    champion is. Exact binomial on the b + c discordant pairs (McNemar's exact test); with
    a margin, the one-sided p-values use the Wald z of the paired difference (an exact
    non-inferiority test of paired proportions has no closed form)."""
    gain = (b - c) / n
    discordant = b + c
    p_two = 1.0 if discordant == 0 else float(stats.binomtest(b, discordant, 0.5).pvalue)
    se = math.sqrt(max(discordant - (b - c) ** 2 / n, 0.0)) / n
    if margin == 0 and discordant > 0:
        p_not_worse = float(stats.binomtest(b, discordant, 0.5, alternative="greater").pvalue)
        p_worse = float(stats.binomtest(b, discordant, 0.5, alternative="less").pvalue)
    else:
        p_not_worse, p_worse = _z_tails(gain + margin, se)
    z = float(stats.norm.isf(alpha))
    low, high = gain - z * se, gain + z * se
    return TestOutcome(
        "McNemar exact test", gain, p_two, p_not_worse, p_worse, low, high, se, margin
    )


def welch(s1: np.ndarray, s0: np.ndarray, *, margin: float, alpha: float) -> TestOutcome:
    """Per-row scores (higher is better) of the challenger's rows and the champion's
    (independent samples): Welch's t-test of the difference of the means."""
    gain = float(np.mean(s1) - np.mean(s0))
    v1, v0 = np.var(s1, ddof=1) / len(s1), np.var(s0, ddof=1) / len(s0)
    se = float(math.sqrt(v1 + v0))
    if se == 0:
        return _constant("Welch t-test", gain, margin)
    p_two = float(stats.ttest_ind(s1, s0, equal_var=False).pvalue)
    shifted = s1 + margin
    p_not_worse = float(stats.ttest_ind(shifted, s0, equal_var=False, alternative="greater").pvalue)
    p_worse = float(stats.ttest_ind(shifted, s0, equal_var=False, alternative="less").pvalue)
    df = (v1 + v0) ** 2 / (v1**2 / (len(s1) - 1) + v0**2 / (len(s0) - 1))
    t = float(stats.t.isf(alpha, df))
    low, high = gain - t * se, gain + t * se
    return TestOutcome("Welch t-test", gain, p_two, p_not_worse, p_worse, low, high, se, margin)


def paired(d: np.ndarray, *, margin: float, alpha: float) -> TestOutcome:
    """Per-row score differences (challenger - champion, higher is better) on the same
    rows: the paired t-test."""
    gain = float(np.mean(d))
    se = float(np.std(d, ddof=1) / math.sqrt(len(d)))
    if se == 0:
        return _constant("paired t-test", gain, margin)
    p_two = float(stats.ttest_1samp(d, 0.0).pvalue)
    p_not_worse = float(stats.ttest_1samp(d, -margin, alternative="greater").pvalue)
    p_worse = float(stats.ttest_1samp(d, -margin, alternative="less").pvalue)
    t = float(stats.t.isf(alpha, len(d) - 1))
    low, high = gain - t * se, gain + t * se
    return TestOutcome("paired t-test", gain, p_two, p_not_worse, p_worse, low, high, se, margin)


def bootstrap(
    gain_of: Callable[[np.ndarray, np.ndarray], float],
    n1: int,
    n0: int,
    *,
    is_paired: bool,
    margin: float,
    alpha: float,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> TestOutcome:
    """``gain_of(idx1, idx0)``: the gain on the challenger's rows ``idx1`` and the
    champion's ``idx0``. Paired rows are resampled together (idx1 is idx0); independent
    arms each on their own. Seeded, so the same rows always give the same verdict."""
    rng = np.random.default_rng(seed)
    gain = gain_of(np.arange(n1), np.arange(n0))
    draws = np.empty(rounds)
    for i in range(rounds):
        idx1 = rng.integers(0, n1, n1)
        idx0 = idx1 if is_paired else rng.integers(0, n0, n0)
        draws[i] = gain_of(idx1, idx0)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return TestOutcome("bootstrap", gain, 1.0, 1.0, 1.0, math.nan, math.nan, math.nan, margin)
    k = draws.size + 1
    p_not_worse = float((1 + np.sum(draws <= -margin)) / k)
    p_worse = float((1 + np.sum(draws >= -margin)) / k)
    p_two = float(min(1.0, 2 * (1 + min(np.sum(draws <= 0), np.sum(draws >= 0))) / k))
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return TestOutcome(
        "paired bootstrap" if is_paired else "bootstrap",
        gain,
        p_two,
        p_not_worse,
        p_worse,
        float(low),
        float(high),
        float(np.std(draws, ddof=1)) if draws.size > 1 else math.nan,
        margin,
    )


def sequential_p(gain: float, se: float, margin: float, tau: float) -> float:
    """Always-valid p-value of "gain = -margin" (the mixture sequential probability ratio
    test of Johari, Pekelis and Walsh, "Always valid inference", 2017, on the normal
    approximation of the gain, mixing N(-margin, tau^2) over the alternatives).

    Its point: the analysis looks again at every run while outcomes accumulate, and a
    fixed-sample test judged at every look rejects a true null far more often than alpha
    (about 20 % each way over 37 looks in bench/challenger_analysis.py). By Ville's
    inequality the likelihood ratio of the mixture exceeds 1/alpha at *any* look with
    probability at most alpha under the null, so deciding at the first look where this
    p-value falls below alpha keeps the error at alpha however often it looks.
    ``tau`` sets which effects it detects fastest (about tau and above)."""
    shifted = gain + margin
    if not (math.isfinite(se) and math.isfinite(shifted)):
        return 1.0
    if se == 0:  # no variance at all: the sign of the difference is certain
        return 1.0 if shifted == 0 else 0.0
    if tau <= 0:
        return 1.0
    v, t2 = se * se, tau * tau
    log_ratio = 0.5 * math.log(v / (v + t2)) + t2 * shifted * shifted / (2 * v * (v + t2))
    return 1.0 if log_ratio <= 0 else math.exp(-log_ratio)
