"""The live comparison of a challenger with the champion: figures, test, verdict.

``compare`` reads the arm's window of the prediction log and says what should happen
(advance, hold or abort) and why, with every number behind it; it changes nothing (the
analysis flow applies the verdict through ``arms``, and the API shows it as it stands).

The window: a canary step is judged on its own rows (since ``step_started_at``: each share
of traffic proves itself), a shadow phase on all of its rows (since ``started_at``). The
rows are those logged with the arm's version as ``challenger_version``. The champion is
measured over the same window, unless it has fewer than ``min_labelled`` outcomes there (a
100 % step leaves it none): then over all of its rows since the arm started.

The verdict, in this order:

1. Guardrails (once the challenger has ``GUARDRAIL_MIN_ROWS`` requests), each aborts at
   once: the share of its rows the fallback answered, its error rate (assigned rows it did
   not answer itself), its mean latency against the champion's (a ratio, once the gap is over
   ``LATENCY_FLOOR_MS``); and (once as many ML
   requests were answered without any arm) the share of the ML traffic answered by replicas
   that do not serve it at all (it failed to load there: such rows carry no arm).
2. Fewer than ``min_labelled`` outcomes in either arm: hold. Too few outcomes never pass.
3. The test (``stats``) on the model's gate metric, with the model's ``promotion_margin`` m
   as non-inferiority margin (the same tolerance as the offline gate): challenger
   significantly worse by more than m -> abort; significantly not worse by more than m ->
   advance, unless the step is younger than ``min_step_minutes`` (hold); else hold.
   "Significantly" reads the always-valid p-value (``stats.sequential_p``) at alpha, since
   the window is judged again at every run; the fixed-sample p-values are reported beside.
4. An arm older than ``max_hours`` that would still hold is aborted: expired.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.config import Settings
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn.registry import UtcTimestamp
from ia_continu.serve.bucketing import challenger_mask
from ia_continu.store.tables import ChallengerArm, PredictionLog, utcnow
from ia_continu.vocab import Arm, ArmMode, Decision, ServedBy

if TYPE_CHECKING:
    from ia_continu.challenge import stats

P = PredictionLog
Verdict = Literal["advance", "hold", "abort"]
HoldKind = Literal["too_few_outcomes", "metric_unavailable", "young_step", "inconclusive"]

# Error metrics (every other one a model reports is a score: accuracy, R², F1...).
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mse"})

# Every replica loads the challenger within a poll of the arm's start; ML rows answered
# without an arm after this long come from one that could not.
LOAD_GRACE = timedelta(seconds=60)

# A guardrail judges a rate only on this many of the challenger's requests: one failure in
# the first three rows is not a 33 % error rate.
GUARDRAIL_MIN_ROWS = 20

# The latency guardrail compares mean milliseconds per row, measured per call: two arms at a
# few microseconds a row differ by 3x from one call's timing on a busy machine (a clearly
# better challenger was once aborted so, at 0.011 against 0.003 ms). Below this gap a ratio
# is noise no client can see; above it the ratio decides.
LATENCY_FLOOR_MS = 1.0


class ArmFigures(BaseModel):
    """One arm over the window."""

    version: str | None
    rows: int = Field(0, description="requests assigned to this arm (shadow: rows scored)")
    labelled: int = Field(0, description="of them, with an outcome (shadow: paired rows)")
    metric: float | None = Field(None, description="the gate metric on the labelled rows")
    error_rate: float | None = Field(
        None, description="share of its rows the model failed on (answered by another)"
    )
    fallback_share: float | None = Field(None, description="share answered by the fallback")
    latency_ms: float | None = Field(None, description="mean time per row it answered")


class Comparison(BaseModel):
    """Challenger against champion on the arm's window, and what the analysis concludes."""

    family: str
    arm_id: int
    version: str
    champion_version: str | None
    mode: ArmMode
    step: int
    percentage: float
    window_start: UtcTimestamp
    champion_window_start: UtcTimestamp = Field(
        description="where the champion's rows start (the arm's start when the step has "
        "too few of them)"
    )
    window_end: UtcTimestamp
    metric: str = Field(description="the model's gate metric")
    higher_is_better: bool
    margin: float = Field(description="non-inferiority margin, in the metric's units")
    alpha: float
    min_labelled: int
    champion: ArmFigures
    challenger: ArmFigures
    test: str | None = Field(None, description="the statistical test run (None: not enough rows)")
    p_value: float | None = Field(None, description="two-sided p-value of 'no difference'")
    p_not_worse: float | None = Field(
        None, description="one-sided p-value of 'challenger worse by more than the margin'"
    )
    p_worse: float | None = Field(
        None, description="one-sided p-value of 'challenger no worse than the margin'"
    )
    p_sequential: float | None = Field(
        None,
        description="always-valid p-value of 'the difference is the margin' (mixture "
        "sequential test): the one the verdict reads, valid however often the arm is judged",
    )
    difference: float | None = Field(
        None, description="challenger's metric minus champion's, in the metric's units"
    )
    ci_low: float | None = Field(None, description="(1 - 2 alpha) interval of the difference")
    ci_high: float | None = None
    verdict: Verdict
    reason: str
    guardrail: str | None = Field(None, description="the guardrail that tripped, if any")
    hold: HoldKind | None = Field(None, description="why it holds, when it does")
    unserved_share: float | None = Field(
        None,
        description="share of the ML requests answered by replicas that do not serve the "
        "challenger (it failed to load there), after a grace for every replica to load it",
    )
    promotes: bool = Field(description="advancing now makes the challenger champion")

    def numbers(self) -> dict[str, Any]:
        """The figures for the audit row and the arm's last verdict (JSON, finite)."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "champion_metric": self.champion.metric,
            "challenger_metric": self.challenger.metric,
            "champion_labelled": self.champion.labelled,
            "challenger_labelled": self.challenger.labelled,
            "champion_rows": self.champion.rows,
            "challenger_rows": self.challenger.rows,
            "challenger_error_rate": self.challenger.error_rate,
            "challenger_fallback_share": self.challenger.fallback_share,
            "champion_latency_ms": self.champion.latency_ms,
            "challenger_latency_ms": self.challenger.latency_ms,
            "test": self.test,
            "p_value": self.p_value,
            "p_not_worse": self.p_not_worse,
            "p_worse": self.p_worse,
            "p_sequential": self.p_sequential,
            "difference": self.difference,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "margin": self.margin,
            "alpha": self.alpha,
            "guardrail": self.guardrail,
            "hold": self.hold,
            "unserved_share": self.unserved_share,
            "window_start": self.window_start.isoformat(),
        }
        return {k: finite_or_none(v) for k, v in out.items()}


def finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# --- reading the window ----------------------------------------------------------------------


def window_start(arm: ChallengerArm) -> datetime:
    return arm.step_started_at if arm.mode == ArmMode.canary else arm.started_at


class Window:
    """The challenger's rows since ``start``, the champion's since ``champion_start``."""

    __slots__ = ("champion_start", "end", "start")

    def __init__(self, start: datetime, champion_start: datetime, end: datetime) -> None:
        self.start, self.champion_start, self.end = start, champion_start, end


def _in_window(arm: ChallengerArm, w: Window) -> Any:
    return and_(
        P.family == arm.family,
        P.challenger_version == arm.version,
        P.created_at >= min(w.start, w.champion_start),
        P.created_at <= w.end,
        or_(
            and_(P.arm == Arm.challenger, P.created_at >= w.start),
            and_(P.arm == Arm.champion, P.created_at >= w.champion_start),
        ),
    )


def _champion_start(
    session: Session, arm: ChallengerArm, start: datetime, end: datetime, need: int
) -> datetime:
    labelled = session.scalar(
        select(func.count()).where(
            _in_window(arm, Window(start, start, end)),
            P.arm == Arm.champion,
            P.served_by == ServedBy.ml,
            P.actual.is_not(None),
        )
    )
    return start if (labelled or 0) >= need else min(start, arm.started_at)


def _champion_failures(session: Session, arm: ChallengerArm, w: Window) -> int:
    # The champion's failed ML rows carry no arm (the fallback answered them): counted by
    # their decision over the same time.
    return int(
        session.scalar(
            select(func.count()).where(
                P.family == arm.family,
                P.created_at >= w.champion_start,
                P.created_at <= w.end,
                P.arm.is_(None),
                P.decision == Decision.fallback_error,
            )
        )
        or 0
    )


def _canary_figures(
    session: Session, arm: ChallengerArm, w: Window
) -> tuple[ArmFigures, ArmFigures]:
    own = and_(P.served_by == ServedBy.ml, P.model_version == arm.version)
    rows = session.execute(
        select(
            P.arm,
            func.count(),
            func.sum(case((own, 1), else_=0)),
            func.sum(case((P.served_by == ServedBy.fallback, 1), else_=0)),
            func.avg(case((P.arm == Arm.champion, P.latency_ms), (own, P.latency_ms))),
        )
        .where(_in_window(arm, w))
        .group_by(P.arm)
    ).all()
    by_arm = {r[0]: r for r in rows}
    ch = by_arm.get(Arm.challenger)
    cp = by_arm.get(Arm.champion)
    challenger = ArmFigures(version=arm.version)
    if ch is not None and ch[1]:
        n, answered, fallback = int(ch[1]), int(ch[2] or 0), int(ch[3] or 0)
        challenger = ArmFigures(
            version=arm.version,
            rows=n,
            error_rate=1 - answered / n,
            fallback_share=fallback / n,
            latency_ms=None if ch[4] is None else float(ch[4]),
        )
    champion = ArmFigures(version=arm.champion_version)
    failures = _champion_failures(session, arm, w)
    n0 = int(cp[1]) if cp is not None else 0
    if n0 + failures:
        champion = ArmFigures(
            version=arm.champion_version,
            rows=n0,
            error_rate=failures / (n0 + failures),
            fallback_share=failures / (n0 + failures),
            latency_ms=None if cp is None or cp[4] is None else float(cp[4]),
        )
    return champion, challenger


def _shadow_figures(
    session: Session, arm: ChallengerArm, w: Window
) -> tuple[ArmFigures, ArmFigures]:
    # Which champion rows the challenger was meant to score is the sticky sample of their
    # request ids: a sampled row without its answer is one the challenger failed on.
    rows = session.execute(
        select(P.request_id, P.challenger_prediction.is_not(None), P.latency_ms).where(
            _in_window(arm, w), P.arm == Arm.champion
        )
    ).all()
    lat_scored = [latency for _, has_answer, latency in rows if has_answer]
    unscored = [(request_id, latency) for request_id, has_answer, latency in rows if not has_answer]
    # The sample's rule for every unscored id at once (one salted hash state, as the predictor).
    missed = challenger_mask([request_id for request_id, _ in unscored], arm.shadow_rate)
    lat_alone = [
        latency for (_, latency), m in zip(unscored, missed.tolist(), strict=True) if not m
    ]
    scored = len(lat_scored)
    sampled = scored + int(missed.sum())
    alone = float(np.mean(lat_alone)) if lat_alone else None
    # A shadowed request runs both models: the challenger's own time is what it adds.
    extra = max(float(np.mean(lat_scored)) - alone, 0.0) if lat_scored and alone else None
    failures = _champion_failures(session, arm, w)
    champion = ArmFigures(
        version=arm.champion_version,
        rows=len(rows),
        error_rate=failures / (len(rows) + failures) if rows or failures else None,
        fallback_share=failures / (len(rows) + failures) if rows or failures else None,
        latency_ms=alone,
    )
    challenger = ArmFigures(
        version=arm.version,
        rows=sampled,
        error_rate=(1 - scored / sampled) if sampled else None,
        fallback_share=0.0 if sampled else None,  # it never answers in shadow
        latency_ms=extra,
    )
    return champion, challenger


def _unserved(
    session: Session, settings: Settings, arm: ChallengerArm, start: datetime, end: datetime
) -> tuple[int, int]:
    """(ML rows answered without any arm, ML rows in the arm) since ``start``, after the
    load grace: a replica that failed to load the challenger answers its requests alone."""
    grace = max(LOAD_GRACE, timedelta(seconds=10 * settings.champion_poll_seconds))
    since = max(start, arm.started_at + grace)
    if since >= end:
        return 0, 0
    rows = session.execute(
        select(P.arm.is_(None), func.count())
        .where(
            P.family == arm.family,
            P.served_by == ServedBy.ml,
            P.created_at >= since,
            P.created_at <= end,
            or_(P.arm.is_(None), P.challenger_version == arm.version),
        )
        .group_by(P.arm.is_(None))
    ).all()
    counts = {bool(without): int(n) for without, n in rows}
    return counts.get(True, 0), counts.get(False, 0)


def _labelled(
    session: Session, arm: ChallengerArm, w: Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canary: (challenger predictions, their outcomes, champion predictions, outcomes) of
    the rows each answered itself. Shadow: the paired rows (both answers, one outcome)."""
    if arm.mode == ArmMode.shadow:
        paired = session.execute(
            select(P.challenger_prediction, P.prediction, P.actual).where(
                _in_window(arm, w),
                P.arm == Arm.champion,
                P.challenger_prediction.is_not(None),
                P.actual.is_not(None),
            )
        ).all()
        a = np.array(paired, dtype=np.float64).reshape(-1, 3)
        return a[:, 0], a[:, 2], a[:, 1], a[:, 2]
    rows = session.execute(
        select(P.arm, P.prediction, P.actual).where(
            _in_window(arm, w),
            P.actual.is_not(None),
            P.served_by == ServedBy.ml,
            or_(
                and_(P.arm == Arm.challenger, P.model_version == arm.version),
                P.arm == Arm.champion,
            ),
        )
    ).all()
    is_challenger = np.array([r[0] == Arm.challenger for r in rows], dtype=bool)
    values = np.array([(r[1], r[2]) for r in rows], dtype=np.float64).reshape(-1, 2)
    c, o = values[is_challenger], values[~is_challenger]
    return c[:, 0], c[:, 1], o[:, 0], o[:, 1]


# --- the metric and its test -----------------------------------------------------------------


def metric_value(
    family: ModelFamily, metric: str, pred: np.ndarray, actual: np.ndarray
) -> float | None:
    if len(pred) == 0:
        return None
    if metric == "accuracy":
        return float(np.mean(family.accurate(pred, actual)))
    if metric == "mae":
        return float(np.mean(np.abs(pred - actual)))
    if metric == "rmse":
        return float(np.sqrt(np.mean((pred - actual) ** 2)))
    value = family.evaluate(actual, pred).get(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def metric_test(
    family: ModelFamily,
    metric: str,
    paired: bool,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    champion_metric: float,
    margin: float,
    alpha: float,
) -> tuple[stats.TestOutcome, Any]:
    """The test fit for the metric and the design; returns it and a function mapping a gain
    (test units) to the difference challenger - champion (metric units)."""
    # scipy loads with the first comparison, not with every process that imports this module
    # (the API does, for its schemas, and serves without scipy otherwise).
    from ia_continu.challenge import stats

    p1, y1, p0, y0 = data
    if metric == "accuracy":
        a1 = family.accurate(p1, y1).astype(bool)
        a0 = family.accurate(p0, y0).astype(bool)
        if paired:
            b, c = int(np.sum(a1 & ~a0)), int(np.sum(a0 & ~a1))
            out = stats.mcnemar(b, c, len(a1), margin=margin, alpha=alpha)
        else:
            out = stats.two_proportions(
                int(a1.sum()), len(a1), int(a0.sum()), len(a0), margin=margin, alpha=alpha
            )
        return out, lambda g: g
    if metric in ("mae", "rmse"):
        # Scores: minus the row's loss, so higher is better as for every gain.
        power = 1 if metric == "mae" else 2
        s1, s0 = -(np.abs(p1 - y1) ** power), -(np.abs(p0 - y0) ** power)
        if metric == "mae":
            m, to_difference = margin, lambda g: -g
        else:
            # RMSE is not a mean: its square is. rmse1 <= rmse0 + m  <=>  gain in MSE >=
            # -((rmse0 + m)^2 - rmse0^2), with the champion's RMSE as the reference.
            m = (champion_metric + margin) ** 2 - champion_metric**2

            def to_difference(g: float) -> float:
                return math.sqrt(max(champion_metric**2 - g, 0.0)) - champion_metric

        if paired:
            out = stats.paired(s1 - s0, margin=m, alpha=alpha)
        else:
            out = stats.welch(s1, s0, margin=m, alpha=alpha)
        return out, to_difference
    sign = 1.0 if _higher_is_better(family, metric) else -1.0

    def gain_of(i1: np.ndarray, i0: np.ndarray) -> float:
        new = metric_value(family, metric, p1[i1], y1[i1])
        old = metric_value(family, metric, p0[i0], y0[i0])
        return math.nan if new is None or old is None else sign * (new - old)

    out = stats.bootstrap(gain_of, len(p1), len(p0), is_paired=paired, margin=margin, alpha=alpha)
    return out, lambda g: sign * g


def _higher_is_better(family: ModelFamily, metric: str) -> bool:
    if metric == family.primary_metric:
        return family.higher_is_better
    return metric not in LOWER_IS_BETTER


# --- the verdict ------------------------------------------------------------------------------


def compare(
    session: Session, settings: Settings, arm: ChallengerArm, now: datetime | None = None
) -> Comparison:
    """Judge ``arm`` on its window (``settings``: the model's view, ``model_settings``)."""
    now = now or utcnow()
    policy = ChallengerPolicy.of(settings)
    family = get_family(settings.family, settings)
    metric = family.primary_metric
    margin = settings.promotion_margin
    start = window_start(arm)
    if arm.mode == ArmMode.shadow:
        w = Window(start, start, now)
        champion, challenger = _shadow_figures(session, arm, w)
    else:
        w = Window(start, _champion_start(session, arm, start, now, policy.min_labelled), now)
        champion, challenger = _canary_figures(session, arm, w)
    data = _labelled(session, arm, w)
    paired = arm.mode == ArmMode.shadow
    challenger.labelled, champion.labelled = len(data[0]), len(data[2])
    challenger.metric = metric_value(family, metric, data[0], data[1])
    champion.metric = metric_value(family, metric, data[2], data[3])
    unserved, served = _unserved(session, settings, arm, start, now)
    unserved_share = unserved / (unserved + served) if unserved + served else None

    base: dict[str, Any] = {
        "family": arm.family,
        "arm_id": arm.id,
        "version": arm.version,
        "champion_version": arm.champion_version,
        "mode": ArmMode(arm.mode),
        "step": arm.step,
        "percentage": arm.percentage,
        "window_start": start,
        "champion_window_start": w.champion_start,
        "window_end": now,
        "metric": metric,
        "higher_is_better": family.higher_is_better,
        "margin": margin,
        "alpha": policy.alpha,
        "min_labelled": policy.min_labelled,
        "champion": champion,
        "challenger": challenger,
        "promotes": _promotes(arm, policy),
        "unserved_share": unserved_share,
    }

    def verdict(
        v: Verdict,
        reason: str,
        guardrail: str | None = None,
        hold: HoldKind | None = None,
        **more: Any,
    ) -> Comparison:
        if v == "hold" and now - arm.started_at >= timedelta(hours=policy.max_hours):
            v, reason = "abort", f"expired: inconclusive after {policy.max_hours:g} h ({reason})"
        return Comparison(**base, **more, verdict=v, reason=reason, guardrail=guardrail, hold=hold)

    if (tripped := _guardrail(policy, champion, challenger)) is not None:
        return verdict("abort", tripped[1], tripped[0])
    if (
        unserved >= GUARDRAIL_MIN_ROWS
        and unserved_share is not None
        and unserved_share > policy.max_error_rate
    ):
        return verdict(
            "abort",
            f"guardrail: {unserved_share:.1%} of the ML requests ({unserved}) were answered "
            f"by replicas that do not serve challenger {arm.version} (it failed to load "
            f"there; max {policy.max_error_rate:.1%})",
            "not_served",
        )
    need = policy.min_labelled
    if challenger.labelled < need or champion.labelled < need:
        return verdict(
            "hold",
            f"too few outcomes: {challenger.labelled} challenger and {champion.labelled} "
            f"champion {'paired ' if paired else ''}rows labelled, {need} needed in each",
            hold="too_few_outcomes",
        )
    if champion.metric is None or challenger.metric is None:
        return verdict(
            "hold", f"the {metric} of the window cannot be computed", hold="metric_unavailable"
        )
    out, to_difference = metric_test(
        family, metric, paired, data, champion.metric, margin, policy.alpha
    )
    lo, hi = sorted((to_difference(out.low), to_difference(out.high)))
    found = {
        "test": out.test,
        "p_value": finite_or_none(out.p_value),
        "p_not_worse": finite_or_none(out.p_not_worse),
        "p_worse": finite_or_none(out.p_worse),
        "difference": challenger.metric - champion.metric,
        "ci_low": finite_or_none(lo),
        "ci_high": finite_or_none(hi),
    }
    said = (
        f"{metric} {challenger.metric:.4g} (challenger, {challenger.labelled} rows) against "
        f"{champion.metric:.4g} (champion, {champion.labelled} rows), {out.test}"
    )
    # The verdict reads the always-valid p-value: this window is judged again at every run
    # while outcomes accumulate, and a fixed-sample p-value read at every look would pass
    # or fail a challenger on chance far more often than alpha.
    p_seq = out.sequential_p(sequential_tau(out, min(challenger.labelled, champion.labelled), need))
    found["p_sequential"] = p_seq
    if p_seq < policy.alpha and out.gain < -out.margin:
        return verdict(
            "abort",
            f"significantly worse: {said}, sequential p={p_seq:.3g} < {policy.alpha:g} "
            f"(margin {margin:g})",
            **found,
        )
    if p_seq < policy.alpha and out.gain > -out.margin:
        age = now - arm.step_started_at
        if age < timedelta(minutes=policy.min_step_minutes):
            return verdict(
                "hold",
                f"not worse ({said}) but the step is {age.total_seconds() / 60:.1f} min old, "
                f"{policy.min_step_minutes:g} min needed",
                hold="young_step",
                **found,
            )
        return verdict(
            "advance",
            f"not worse than the champion by more than {margin:g}: {said}, "
            f"sequential p={p_seq:.3g} < {policy.alpha:g}",
            **found,
        )
    return verdict(
        "hold",
        f"inconclusive: {said}, sequential p={p_seq:.3g}, alpha {policy.alpha:g}",
        hold="inconclusive",
        **found,
    )


def sequential_tau(out: stats.TestOutcome, labelled: int, min_labelled: int) -> float:
    """The mixing scale of the sequential test: the standard error the gain would have on
    ``min_labelled`` outcomes per arm, so it detects fastest the effects that many outcomes
    can show (the same scale at every look: se shrinks as 1/sqrt(n))."""
    if not math.isfinite(out.se) or labelled <= 0:
        return 0.0
    return out.se * math.sqrt(labelled / max(min_labelled, 1))


def _guardrail(
    policy: ChallengerPolicy, champion: ArmFigures, challenger: ArmFigures
) -> tuple[str, str] | None:
    if challenger.rows < GUARDRAIL_MIN_ROWS:
        return None
    # The fallback's rows are failures too (the challenger's and then the champion's):
    # named first, since the clients got the heuristic's answers.
    share = challenger.fallback_share
    if share is not None and share > policy.max_fallback_share:
        return "fallback_share", (
            f"guardrail: the fallback answered {challenger.fallback_share:.1%} of the "
            f"challenger's rows (max {policy.max_fallback_share:.1%})"
        )
    if challenger.error_rate is not None and challenger.error_rate > policy.max_error_rate:
        return "error_rate", (
            f"guardrail: the challenger failed on {challenger.error_rate:.1%} of its "
            f"{challenger.rows} rows (max {policy.max_error_rate:.1%})"
        )
    if (
        challenger.latency_ms is not None
        and champion.latency_ms
        and challenger.latency_ms > policy.max_latency_ratio * champion.latency_ms
        and challenger.latency_ms - champion.latency_ms > LATENCY_FLOOR_MS
    ):
        return "latency", (
            f"guardrail: the challenger takes {challenger.latency_ms:.3g} ms a row against "
            f"the champion's {champion.latency_ms:.3g} ms (max x{policy.max_latency_ratio:g})"
        )
    return None


def _promotes(arm: ChallengerArm, policy: ChallengerPolicy) -> bool:
    """Would advancing make the challenger champion (the step an approval guards)?"""
    if arm.mode == ArmMode.shadow:
        return arm.policy != "shadow-then-canary"
    return arm.step + 1 >= len(policy.steps)
