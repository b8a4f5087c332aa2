"""compare() on prediction-log rows written as serving writes them (SQLite and PostgreSQL):
the window, the figures per arm, the test per design and metric, and each verdict with its
reason; and the new champion's watch. The rows are drawn with known accuracies so each
verdict is the one the numbers call for (seeded: the same rows every run)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import stats as sp

from ia_continu.challenge import analysis, watch
from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.serve.bucketing import in_challenger_sample
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ChallengerArm, ChampionHistory, PredictionLog, utcnow
from ia_continu.vocab import Arm, ArmMode, ArmStatus, ChampionAction, Decision, ServedBy

CHAMPION, CHALLENGER = "1", "2"
POLICY = dict(
    challenger_policy="canary",
    canary_steps=[50, 100],
    challenger_min_labelled=100,
    challenger_min_step_minutes=0,
)


@pytest.fixture
def view(settings_factory):
    return settings_factory(**POLICY)


def _arm(session, *, mode=ArmMode.canary, step=0, percentage=50.0, age_hours=1.0, family=None):
    now = utcnow()
    arm = ChallengerArm(
        family=family or "classification",
        version=CHALLENGER,
        champion_version=CHAMPION,
        policy="canary" if mode == ArmMode.canary else "shadow",
        mode=mode,
        step=step if mode == ArmMode.canary else -1,
        percentage=percentage if mode == ArmMode.canary else 0.0,
        shadow_rate=0.5,
        status=ArmStatus.active,
        started_at=now - timedelta(hours=age_hours),
        step_started_at=now - timedelta(minutes=30),
    )
    session.add(arm)
    session.flush()
    return arm


def _rows(
    session,
    who: Arm,
    n: int,
    accuracy: float,
    *,
    labelled: int | None = None,
    seed: int = 0,
    version: str | None = None,
    served_by: ServedBy = ServedBy.ml,
    latency_ms: float = 1.0,
    minutes_ago: float = 5.0,
    family: str = "classification",
):
    """``n`` rows of one arm, ``labelled`` of them (default all) with outcomes, right on
    ``accuracy`` of those (exactly: the verdicts must not depend on luck)."""
    rng = np.random.default_rng(seed)
    labelled = n if labelled is None else labelled
    right = np.zeros(n, bool)
    right[: round(accuracy * labelled)] = True
    rng.shuffle(right[:labelled])
    actual = rng.integers(0, 2, n).astype(float)
    pred = np.where(right, actual, 1 - actual)
    created = utcnow() - timedelta(minutes=minutes_ago)
    for i in range(n):
        has = i < labelled
        session.add(
            PredictionLog(
                request_id=f"{who}-{seed}-{i}",
                family=family,
                features=[0.0, 0.0],
                prediction=float(pred[i]),
                confidence=0.9,
                model_version=version or (CHALLENGER if who == Arm.challenger else CHAMPION),
                latency_ms=latency_ms,
                decision=Decision.ml if served_by == ServedBy.ml else Decision.fallback_error,
                served_by=served_by,
                arm=who,
                challenger_version=CHALLENGER,
                actual=float(actual[i]) if has else None,
                is_accurate=bool(right[i]) if has else None,
                created_at=created,
            )
        )
    session.flush()


def _compare(engine, view, build):
    with session_scope(engine) as s:
        arm = build(s)
        return analysis.compare(s, view, arm)


def test_a_better_canary_advances_with_the_two_proportion_test(engine, view):
    def build(s):
        arm = _arm(s)
        _rows(s, Arm.challenger, 300, 0.85, seed=1)
        _rows(s, Arm.champion, 300, 0.70, seed=2)
        return arm

    c = _compare(engine, view, build)
    assert c.verdict == "advance" and not c.promotes
    assert c.test == "two-proportion z-test"
    assert (c.challenger.labelled, c.champion.labelled) == (300, 300)
    assert c.challenger.metric == pytest.approx(0.85) and c.champion.metric == pytest.approx(0.7)
    table = np.array([[255, 45], [210, 90]])
    assert c.p_value == pytest.approx(sp.chi2_contingency(table, correction=False).pvalue)
    assert c.difference == pytest.approx(0.15)
    assert c.ci_low < 0.15 < c.ci_high and c.ci_low > 0
    assert c.challenger.error_rate == 0 and c.challenger.fallback_share == 0
    assert "not worse" in c.reason
    assert c.numbers()["p_not_worse"] < 0.05  # what the audit row keeps


def test_a_worse_canary_is_aborted(engine, view):
    def build(s):
        arm = _arm(s)
        _rows(s, Arm.challenger, 300, 0.60, seed=1)
        _rows(s, Arm.champion, 300, 0.80, seed=2)
        return arm

    c = _compare(engine, view, build)
    assert c.verdict == "abort" and c.guardrail is None
    assert c.reason.startswith("significantly worse") and c.p_worse < 0.05


def test_too_few_outcomes_hold_even_when_the_challenger_looks_better(engine, view):
    def build(s):
        arm = _arm(s)
        _rows(s, Arm.challenger, 300, 1.0, labelled=40, seed=1)
        _rows(s, Arm.champion, 300, 0.5, labelled=40, seed=2)
        return arm

    c = _compare(engine, view, build)
    assert c.verdict == "hold" and c.test is None and c.p_value is None
    assert c.hold == "too_few_outcomes"
    assert c.reason.startswith("too few outcomes: 40 challenger and 40 champion")
    assert (c.challenger.rows, c.challenger.labelled) == (300, 40)


def test_an_inconclusive_arm_holds_then_expires(engine, view):
    def build(age_hours):
        def make(s):
            arm = _arm(s, age_hours=age_hours)
            _rows(s, Arm.challenger, 150, 0.80, seed=1)
            _rows(s, Arm.champion, 150, 0.80, seed=2)
            return arm

        return make

    c = _compare(engine, view, build(1.0))
    assert c.verdict == "hold" and c.reason.startswith("inconclusive")
    assert c.hold == "inconclusive"
    with session_scope(engine) as s:
        s.query(ChallengerArm).delete()
        s.query(PredictionLog).delete()
    c = _compare(engine, view, build(200.0))  # older than challenger_max_hours (168)
    assert c.verdict == "abort" and c.reason.startswith("expired: inconclusive after 168 h")


def test_a_young_step_holds_a_winner(engine, settings_factory):
    young = settings_factory(**{**POLICY, "challenger_min_step_minutes": 60})

    def build(s):
        arm = _arm(s)  # its step started 30 minutes ago
        _rows(s, Arm.challenger, 300, 0.9, seed=1)
        _rows(s, Arm.champion, 300, 0.6, seed=2)
        return arm

    c = _compare(engine, young, build)
    assert c.verdict == "hold" and "60 min needed" in c.reason and c.hold == "young_step"


def test_a_significantly_worse_challenger_aborts_even_in_a_young_step(engine, settings_factory):
    young = settings_factory(**{**POLICY, "challenger_min_step_minutes": 60})

    def build(s):
        arm = _arm(s)
        _rows(s, Arm.challenger, 300, 0.5, seed=1)
        _rows(s, Arm.champion, 300, 0.9, seed=2)
        return arm

    assert _compare(engine, young, build).verdict == "abort"


def test_the_window_is_the_step_and_the_champion_falls_back_to_the_arm_s_start(engine, view):
    def build(s):
        arm = _arm(s, step=1, percentage=100.0)  # the last step: the champion answers none
        # Before the step: a bad challenger (the previous step's rows: not judged now) and
        # the champion's rows, its reference since the arm started.
        _rows(s, Arm.challenger, 300, 0.1, seed=1, minutes_ago=45)
        _rows(s, Arm.champion, 300, 0.70, seed=2, minutes_ago=45)
        _rows(s, Arm.challenger, 300, 0.85, seed=3)
        return arm

    c = _compare(engine, view, build)
    assert c.challenger.labelled == 300 and c.challenger.metric == pytest.approx(0.85)
    assert c.champion.labelled == 300 and c.champion.metric == pytest.approx(0.7)
    assert c.champion_window_start < c.window_start
    assert c.verdict == "advance" and c.promotes


@pytest.mark.parametrize(
    ("guardrail", "rows"),
    [
        # The champion answered 30 % of the challenger's rows: it failed on them.
        ("error_rate", lambda s: _rows(s, Arm.challenger, 30, 0.9, seed=9, version=CHAMPION)),
        (
            "fallback_share",
            lambda s: _rows(s, Arm.challenger, 30, 0.9, seed=9, served_by="fallback"),
        ),
    ],
)
def test_guardrails_abort_at_once(engine, view, guardrail, rows):
    def build(s):
        arm = _arm(s)
        _rows(s, Arm.challenger, 70, 0.9, labelled=5, seed=1)  # too few outcomes to judge
        _rows(s, Arm.champion, 100, 0.9, labelled=5, seed=2)
        rows(s)
        return arm

    c = _compare(engine, view, build)
    assert c.verdict == "abort" and c.guardrail == guardrail
    assert c.reason.startswith("guardrail")
    assert c.challenger.rows == 100
    if guardrail == "error_rate":
        assert c.challenger.error_rate == pytest.approx(0.3)
    else:
        assert c.challenger.fallback_share == pytest.approx(0.3)


def test_a_slow_challenger_trips_the_latency_guardrail_but_not_on_few_rows(engine, view):
    def build(n):
        def make(s):
            arm = _arm(s)
            _rows(s, Arm.challenger, n, 0.9, seed=1, latency_ms=10.0)
            _rows(s, Arm.champion, 100, 0.9, seed=2, latency_ms=1.0)
            return arm

        return make

    c = _compare(engine, view, build(50))
    assert c.verdict == "abort" and c.guardrail == "latency"
    assert c.challenger.latency_ms == pytest.approx(10.0)
    with session_scope(engine) as s:
        s.query(ChallengerArm).delete()
        s.query(PredictionLog).delete()
    c = _compare(engine, view, build(analysis.GUARDRAIL_MIN_ROWS - 1))
    assert c.guardrail is None and c.verdict == "hold"


def test_a_latency_ratio_under_the_floor_is_noise_not_a_guardrail(engine, view):
    """4x slower, but by 8 microseconds a row: what one call's timing varies by."""

    def build(s):
        arm = _arm(s)
        _rows(s, Arm.challenger, 100, 0.9, seed=1, latency_ms=0.011)
        _rows(s, Arm.champion, 100, 0.9, seed=2, latency_ms=0.0027)
        return arm

    c = _compare(engine, view, build)
    assert c.guardrail is None
    assert c.challenger.latency_ms > 3 * c.champion.latency_ms


def test_shadow_rows_are_paired_mcnemar_and_unscored_sampled_rows_are_failures(engine, view):
    """Shadow: the champion answers every row; the challenger's answer is on the sampled
    ones. A sampled row without it is a failure; the paired test reads the discordant
    pairs."""
    rng = np.random.default_rng(4)
    ids = [f"s-{i}" for i in range(800)]
    sampled = [i for i in ids if in_challenger_sample(i, 0.5)]

    def build(s, fail_every: int):
        arm = _arm(s, mode=ArmMode.shadow)
        b = c = 0
        for n, rid in enumerate(ids):
            actual = float(rng.integers(0, 2))
            champ_right = rng.random() < 0.7
            pred = actual if champ_right else 1 - actual
            other = None
            if rid in sampled and (fail_every == 0 or n % fail_every):
                chal_right = rng.random() < 0.9
                other = actual if chal_right else 1 - actual
                b += chal_right and not champ_right
                c += champ_right and not chal_right
            s.add(
                PredictionLog(
                    request_id=rid,
                    family="classification",
                    features=[0.0, 0.0],
                    prediction=pred,
                    confidence=0.9,
                    model_version=CHAMPION,
                    latency_ms=1.0,
                    decision=Decision.ml,
                    served_by=ServedBy.ml,
                    arm=Arm.champion,
                    challenger_version=CHALLENGER,
                    challenger_prediction=other,
                    actual=actual,
                    is_accurate=pred == actual,
                    created_at=utcnow() - timedelta(minutes=5),
                )
            )
        s.flush()
        return arm, b, c

    with session_scope(engine) as s:
        arm, b, c = build(s, fail_every=0)
        out = analysis.compare(s, view, arm)
    assert out.test == "McNemar exact test" and out.verdict == "advance" and out.promotes
    assert out.challenger.labelled == out.champion.labelled == len(sampled)
    assert out.p_value == pytest.approx(sp.binomtest(b, b + c, 0.5).pvalue)
    assert out.challenger.error_rate == 0 and out.champion.rows == len(ids)

    with session_scope(engine) as s:
        s.query(ChallengerArm).delete()
        s.query(PredictionLog).delete()
    with session_scope(engine) as s:
        arm, _, _ = build(s, fail_every=5)  # one sampled row in five has no answer
        out = analysis.compare(s, view, arm)
    assert out.verdict == "abort" and out.guardrail == "error_rate"
    assert out.challenger.rows == len(sampled)
    assert out.challenger.error_rate == pytest.approx(0.2, abs=0.03)


def test_a_regressor_s_rmse_is_judged_on_squared_errors(engine, settings_factory):
    """delay (gate metric RMSE): Welch on minus squared errors, difference in minutes."""
    view = settings_factory(**POLICY, family="delay")
    rng = np.random.default_rng(5)

    def add(s, who, sd):
        for i in range(300):
            actual = float(rng.normal(10, 3))
            s.add(
                PredictionLog(
                    request_id=f"{who}-{i}",
                    family="delay",
                    features=[0.0] * 6,
                    prediction=actual + float(rng.normal(0, sd)),
                    confidence=0.9,
                    model_version=CHALLENGER if who == Arm.challenger else CHAMPION,
                    latency_ms=1.0,
                    decision=Decision.ml,
                    served_by=ServedBy.ml,
                    arm=who,
                    challenger_version=CHALLENGER,
                    actual=actual,
                    created_at=utcnow() - timedelta(minutes=5),
                )
            )

    with session_scope(engine) as s:
        arm = _arm(s, family="delay")
        add(s, Arm.challenger, 2.0)
        add(s, Arm.champion, 4.0)
        s.flush()
        c = analysis.compare(s, view, arm)
    assert c.metric == "rmse" and not c.higher_is_better
    assert c.test == "Welch t-test" and c.verdict == "advance"
    assert c.challenger.metric == pytest.approx(2.0, rel=0.15)
    assert c.difference == pytest.approx(c.challenger.metric - c.champion.metric)
    assert c.ci_low < c.difference < c.ci_high < 0


def test_the_watch_rolls_back_a_new_champion_significantly_worse_than_the_last(engine, view):
    now = utcnow()
    with session_scope(engine) as s:
        s.add(
            ChampionHistory(
                family="classification",
                action=ChampionAction.promote,
                version=CHAMPION,
                created_at=now - timedelta(hours=30),
            )
        )
        s.add(
            ChampionHistory(
                family="classification",
                action=ChampionAction.promote,
                version=CHALLENGER,
                previous_version=CHAMPION,
                created_at=now - timedelta(hours=1),
            )
        )
        # Before the promotion: the old champion right on 90 %; after: the new one on 60 %.
        _rows(s, Arm.champion, 200, 0.9, seed=1, minutes_ago=120, version=CHAMPION)
        _rows(s, Arm.champion, 150, 0.6, seed=2, minutes_ago=10, version=CHALLENGER)
        found = watch.check(s, view)
    assert found is not None and found.verdict == "rollback"
    assert (found.new_labelled, found.previous_labelled) == (150, 200)
    assert found.new_metric == pytest.approx(0.6) and found.previous_metric == pytest.approx(0.9)
    assert found.numbers()["p_worse"] < 0.05
    # Past the watch (24 h), or with too few outcomes, nothing is rolled back.
    with session_scope(engine) as s:
        assert watch.check(s, view, now=now + timedelta(hours=24)) is None
    few = {**POLICY, "challenger_min_labelled": 500}
    with session_scope(engine) as s:
        from ia_continu.config import Settings

        waiting = watch.check(s, Settings(**{**view.model_dump(), **few}))
    assert waiting is not None and waiting.verdict == "wait"


def test_other_metrics_are_bootstrapped_through_the_family(settings_factory):
    """A gate metric that is not a mean of per-row values (R² here) goes to the seeded
    bootstrap, computed by the family's own evaluate."""
    from ia_continu.families import get_family

    family = get_family("delay", settings_factory(family="delay"))
    rng = np.random.default_rng(6)
    y1, y0 = rng.normal(10, 3, 300), rng.normal(10, 3, 300)
    data = (y1 + rng.normal(0, 1, 300), y1, y0 + rng.normal(0, 2.5, 300), y0)
    r2_0 = family.evaluate(y0, data[2])["r2"]
    out, to_difference = analysis.metric_test(family, "r2", False, data, r2_0, 0.0, 0.05)
    assert out.test == "bootstrap"
    expected = family.evaluate(y1, data[0])["r2"] - r2_0
    assert out.gain == pytest.approx(expected)  # higher is better: gain = difference
    assert to_difference(out.gain) == pytest.approx(expected)
    assert out.low < expected < out.high and out.p_not_worse < 0.05
    # Paired: both models on the same rows.
    other = y1 + rng.normal(0, 2.5, 300)
    paired, _ = analysis.metric_test(family, "r2", True, (data[0], y1, other, y1), r2_0, 0.0, 0.05)
    assert paired.test == "paired bootstrap" and paired.p_not_worse < 0.05


def _unassigned(s, n: int, minutes_ago: float) -> None:
    """ML rows answered with no arm: a replica that could not load the challenger."""
    for i in range(n):
        s.add(
            PredictionLog(
                request_id=f"alone-{minutes_ago}-{i}",
                family="classification",
                features=[0.0, 0.0],
                prediction=1.0,
                confidence=0.9,
                model_version=CHAMPION,
                latency_ms=1.0,
                decision=Decision.ml,
                served_by=ServedBy.ml,
                created_at=utcnow() - timedelta(minutes=minutes_ago),
            )
        )


def test_a_challenger_some_replica_cannot_load_is_aborted(engine, view):
    def build(s):
        arm = _arm(s)  # started an hour ago: every replica had time to load it
        _rows(s, Arm.challenger, 50, 0.9, labelled=5, seed=1)
        _rows(s, Arm.champion, 50, 0.9, labelled=5, seed=2)
        _unassigned(s, 40, minutes_ago=5)
        return arm

    c = _compare(engine, view, build)
    assert c.verdict == "abort" and c.guardrail == "not_served"
    assert c.unserved_share == pytest.approx(40 / 140)


def test_rows_without_the_arm_in_the_load_grace_are_not_failures(engine, view):
    def build(s):
        arm = _arm(s, age_hours=0.5 / 60)  # started 30 s ago: replicas still loading it
        arm.step_started_at = arm.started_at
        _rows(s, Arm.challenger, 50, 0.9, labelled=5, seed=1, minutes_ago=0.1)
        _unassigned(s, 40, minutes_ago=0.2)
        return arm

    c = _compare(engine, view, build)
    assert c.guardrail is None and c.unserved_share is None and c.verdict == "hold"


def test_a_declared_multiclass_model_is_judged_on_its_classes(engine, view):
    """iris (declared, three classes): accuracy from the stored class indices."""
    from ia_continu.catalog import model_settings

    iris = model_settings(view, "iris")
    rng = np.random.default_rng(7)
    with session_scope(engine) as s:
        arm = _arm(s, family="iris")
        for who, right_share in ((Arm.challenger, 0.95), (Arm.champion, 0.75)):
            for i in range(200):
                actual = float(rng.integers(0, 3))
                pred = actual if i < right_share * 200 else (actual + 1) % 3
                s.add(
                    PredictionLog(
                        request_id=f"iris-{who}-{i}",
                        family="iris",
                        features=[5.0, 3.0, 1.5, 0.2],
                        prediction=pred,
                        confidence=0.9,
                        model_version=CHALLENGER if who == Arm.challenger else CHAMPION,
                        latency_ms=1.0,
                        decision=Decision.ml,
                        served_by=ServedBy.ml,
                        arm=who,
                        challenger_version=CHALLENGER,
                        actual=actual,
                        created_at=utcnow() - timedelta(minutes=5),
                    )
                )
        s.flush()
        c = analysis.compare(s, iris, arm)
    assert (c.family, c.metric, c.test) == ("iris", "accuracy", "two-proportion z-test")
    assert c.challenger.metric == pytest.approx(0.95) and c.champion.metric == pytest.approx(0.75)
    assert c.verdict == "advance"


def test_only_the_last_step_promotes(engine, view):
    """``promotes`` (what an approval guards): past the last canary step, or out of a
    shadow that is the whole policy; not out of the shadow of shadow-then-canary."""
    with session_scope(engine) as s:
        first = _arm(s, step=0)
        assert not analysis.compare(s, view, first).promotes
        first.step = 1
        assert analysis.compare(s, view, first).promotes
        shadow = _arm(s, mode=ArmMode.shadow, family="delay")  # one active arm per model
        policy = ChallengerPolicy.of(view)
        assert analysis._promotes(shadow, policy)
        shadow.policy = "shadow-then-canary"
        assert not analysis._promotes(shadow, policy)
