"""The prediction path: who answers each row (ML or the fallback), and why.

For each row of a call: the rollout decides (``route``), the chosen scorer answers, a shadow
sample is scored by the other one too, and a model failure falls back (or fails the call,
when the flag says not to fall back). The answers go to the client and, off the request
path, to the prediction log. Works on whole batches with numpy: a single prediction is a
batch of one.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Engine

from ia_continu.challenge.arms import LiveArm
from ia_continu.config import Settings
from ia_continu.errors import ModelFailure
from ia_continu.families import ModelFamily
from ia_continu.families.base import Scores
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.serve.answers import Answers, Context, LogChunk, merge
from ia_continu.serve.bucketing import (
    canary_mask,
    challenger_mask,
    in_shadow_sample,
    in_share,
    shadow_mask,
    share_mask,
)
from ia_continu.serve.champion import ModelHolder, ServedModel
from ia_continu.serve.flag import RolloutCache, RolloutState
from ia_continu.serve.ids import complete_ids, new_id
from ia_continu.store.engine import session_scope
from ia_continu.store.schemas import schema_id
from ia_continu.store.tables import utcnow
from ia_continu.vocab import Arm, ArmMode, Decision
from ia_continu.watch.rollout_health import ErrorRateAlarm

log = logging.getLogger(__name__)

Scorer = Callable[[np.ndarray], Scores]
# (each row's Decision, seconds spent, the ML version) -> None: Prometheus, in the API.
Observer = Callable[[np.ndarray, float, str | None], None]


def route(ids: Sequence[str], state: RolloutState, has_model: bool) -> np.ndarray:
    """Each row's Decision (an object array): ML, or why the fallback answers instead."""
    n = len(ids)
    if not has_model:
        return np.full(n, Decision.fallback_no_model, dtype=object)
    if not state.enabled:
        return np.full(n, Decision.fallback_disabled, dtype=object)
    if state.percentage >= 100:
        return np.full(n, Decision.ml, dtype=object)
    share = share_mask(ids, state.percentage)
    decision = np.full(n, Decision.fallback_share, dtype=object)
    decision[share] = Decision.ml
    return decision


class Predictor:
    def __init__(
        self,
        settings: Settings,
        holder: ModelHolder,
        flags: RolloutCache,
        writer: PredictionLogWriter | None,
        alarm: ErrorRateAlarm | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.family: ModelFamily = holder.family
        self.flags = flags
        self.writer = writer
        self.alarm = alarm
        self.observe = observe
        # The FeatureSchema.id of this family's feature order, written on every logged row.
        self.schema_id = _schema_id(holder.engine, self.family) if writer is not None else None

    def predict(self, X: np.ndarray, context: Context | None = None) -> Answers:
        """Answer every row of X (already validated); hand the answers to the log."""
        if len(X) == 1:
            return self._predict_one(X, context or Context())
        return self._predict_rows(X, context)

    def _predict_one(self, X: np.ndarray, context: Context) -> Answers:
        """``_predict_rows`` for one row (every ``/predict``), from Python values rather than
        masks over arrays of one: the same answer, log row, alarm and metrics, ~25 us less a
        call in-process (half the predictor's time). A row the shadow sample or a live
        challenger takes goes to ``_predict_rows``, with the id it drew here."""
        started = time.perf_counter()
        state = self.flags.get()
        served = self.holder.current
        given = context.request_ids
        request_id = (given[0] if given else None) or new_id()
        # route(), for one id.
        if served is None:
            decision = Decision.fallback_no_model
        elif not state.enabled:
            decision = Decision.fallback_disabled
        elif state.percentage >= 100 or in_share(request_id, state.percentage):
            decision = Decision.ml
        else:
            decision = Decision.fallback_share
        if served is not None and (
            self.holder.challenger is not None or in_shadow_sample(request_id, state.shadow_rate)
        ):
            return self._predict_rows(
                X, Context([request_id], context.booking_ids, context.driver_ids)
            )
        scores: Scores | None = None
        ml_failed = 0
        if decision == Decision.ml:
            assert served is not None
            try:
                scores = served.score(X)
                _check_finite_one(scores)
            except Exception as exc:
                ml_failed = 1
                log.warning("ML model %s failed on %d rows: %s", served.version, 1, exc)
                if not state.fallback_on_error:
                    self._record_alarm(ml_failed, ml_failed)
                    raise ModelFailure(f"model {served.version} failed: {exc}") from exc
                decision, scores = Decision.fallback_error, None
        by_ml = scores is not None
        if scores is None:
            scores = self.family.fallback(X)
        # merge(), for one row answered by one scorer.
        prediction = np.asarray(scores.prediction, dtype=float)
        probability = scores.extra.get("probability")
        answers = Answers(
            request_ids=[request_id],
            prediction=prediction,
            confidence=np.asarray(scores.confidence, dtype=float),
            by_ml=np.array([by_ml]),
            decision=np.array([decision], dtype=object),
            model_version=served.version if served is not None else None,
            latency_ms=0.0,
            created_at=utcnow(),
            risk_level=None if scores.risk_level is None else list(scores.risk_level),
            contributing_factors=(
                None if scores.contributing_factors is None else list(scores.contributing_factors)
            ),
            probability=None if probability is None else np.asarray(probability, dtype=float),
            ml_prediction=prediction if by_ml else None,
            fallback_prediction=None if by_ml else prediction,
        )
        answers.latency_ms = (time.perf_counter() - started) * 1000.0
        if self.writer is not None:
            self.writer.submit_chunk(
                LogChunk(self.family.name, X, context, answers, state.ml_percentage, self.schema_id)
            )
        self._record_alarm(int(by_ml) + ml_failed, ml_failed)
        if self.observe is not None:
            self.observe(answers.decision, time.perf_counter() - started, answers.model_version)
        return answers

    def _predict_rows(self, X: np.ndarray, context: Context | None = None) -> Answers:
        started = time.perf_counter()
        n = len(X)
        context = context or Context()
        state = self.flags.get()
        served = self.holder.current
        ids = complete_ids(context.request_ids, n)
        decision = route(ids, state, served is not None)
        use_ml = decision == Decision.ml
        # Shadow mode: for a sample of ids, compute the answer that was *not* served too.
        shadow = np.zeros(n, bool)
        if served is not None and state.shadow_rate > 0:
            shadow = shadow_mask(ids, state.shadow_rate)

        ml_rows = use_ml | shadow
        # A live challenger (ia_continu.challenge): its canary share of the ML rows answered by
        # it, or a shadow sample of the champion's rows scored by it too.
        live = self.holder.challenger if served is not None else None
        arm = _ArmRows.assign(live.arm, ids, use_ml) if live is not None else None
        if arm is not None:
            ml_rows = ml_rows & ~arm.answers
        ml_scores: Scores | None = None
        ml_failed = 0
        if served is not None and ml_rows.any():
            try:
                scores = _score(served.score, X, ml_rows)
                _check_finite(scores)
                ml_scores = scores
            except Exception as exc:
                ml_failed = int((use_ml & ml_rows).sum())
                log.warning("ML model %s failed on %d rows: %s", served.version, n, exc)
                if ml_failed and not state.fallback_on_error:
                    self._record_alarm(ml_failed, ml_failed)
                    raise ModelFailure(f"model {served.version} failed: {exc}") from exc
                failed = use_ml & ml_rows
                decision[failed] = Decision.fallback_error
                use_ml = use_ml & ~failed
                ml_rows = np.zeros(n, bool)
        if arm is not None:
            assert live is not None and served is not None
            ml_scores, ml_rows, extra_failed = arm.score(live.model, served, X, ml_scores, ml_rows)
            if extra_failed.any():  # challenger and champion both failed on these rows
                decision[extra_failed] = Decision.fallback_error
                use_ml = use_ml & ~extra_failed
        fb_rows = ~use_ml | (shadow & (ml_scores is not None))
        fb_scores = _score(self.family.fallback, X, fb_rows) if fb_rows.any() else None

        answers = merge(
            request_ids=ids,
            decision=decision,
            use_ml=use_ml,
            ml=ml_scores,
            ml_rows=ml_rows,
            fallback=fb_scores,
            fallback_rows=fb_rows,
            model_version=served.version if served is not None else None,
            created_at=utcnow(),
        )
        if arm is not None:
            assert live is not None
            arm.annotate(answers, live.model.version)
        answers.latency_ms = (time.perf_counter() - started) * 1000.0 / max(n, 1)
        if self.writer is not None:
            self.writer.submit_chunk(
                LogChunk(self.family.name, X, context, answers, state.ml_percentage, self.schema_id)
            )
        self._record_alarm(int(use_ml.sum()) + ml_failed, ml_failed)
        if self.observe is not None:
            self.observe(decision, time.perf_counter() - started, answers.model_version)
        return answers

    def _record_alarm(self, attempts: int, failures: int) -> None:
        if self.alarm is not None and attempts:
            self.alarm.record(attempts, failures)


def _schema_id(engine: Engine, family: ModelFamily) -> int | None:
    """The id of the family's feature order (looked up once, here, off the request path);
    None, which readers take for the current order, only if the database cannot say."""
    try:
        with session_scope(engine) as session:
            return schema_id(session, family.name, family.feature_names)
    except Exception as exc:
        log.error("feature schema of %s unknown, rows logged without it: %s", family.name, exc)
        return None


def _score(score: Scorer, X: np.ndarray, mask: np.ndarray) -> Scores:
    return score(X if mask.all() else X[mask])


def _check_finite_one(scores: Scores) -> None:
    """``_check_finite`` of one row's scores, on Python numbers (one call instead of four
    numpy reductions over arrays of one)."""
    if not all(map(math.isfinite, scores.prediction.tolist() + scores.confidence.tolist())):
        raise ValueError("the model answered a non-finite prediction or confidence")


def _check_finite(scores: Scores) -> None:
    # A model that answers NaN or infinity has failed as surely as one that raises: its rows
    # take the same path (the fallback, or a 503 when the rollout says not to fall back).
    if not (np.isfinite(scores.prediction).all() and np.isfinite(scores.confidence).all()):
        raise ValueError("the model answered a non-finite prediction or confidence")


class _ArmRows:
    """Which of a call's rows the live challenger answers (canary) or scores beside the
    champion (shadow), and what it did with them.

    Sticky like the rollout share, with their own salts: the canary share and the shadow
    sample are independent of the rollout's buckets, so a 50 % canary on a 50 % rollout
    takes half of the ML rows, not all of them. A challenger that fails is never what a
    client sees: its canary rows are answered by the champion (and counted, for the
    analysis' error-rate guardrail, by their ``arm`` saying challenger while the version is
    the champion's)."""

    __slots__ = ("answers", "assigned", "prediction", "shadowed")

    def __init__(self, assigned: np.ndarray, shadowed: np.ndarray) -> None:
        self.assigned = assigned  # ML rows in the challenger's canary share
        self.shadowed = shadowed  # champion rows the challenger scores too, not answering
        self.answers = assigned.copy()  # rows the challenger answers (assigned, if it works)
        self.prediction: np.ndarray | None = None  # its answers on shadowed rows, NaN elsewhere

    @classmethod
    def assign(cls, arm: LiveArm, ids: list[str], use_ml: np.ndarray) -> _ArmRows:
        n = len(ids)
        if arm.mode == ArmMode.canary and arm.percentage > 0:
            share = canary_mask(ids, arm.percentage)
            return cls(use_ml & share, np.zeros(n, bool))
        sample = challenger_mask(ids, arm.shadow_rate)
        return cls(np.zeros(n, bool), use_ml & sample)

    def score(
        self,
        challenger: ServedModel,
        champion: ServedModel,
        X: np.ndarray,
        ml: Scores | None,
        ml_rows: np.ndarray,
    ) -> tuple[Scores | None, np.ndarray, np.ndarray]:
        """Score the challenger's rows; returns the ML scores over the union of the rows
        either model answered, that union, and the rows no model could answer."""
        n = len(X)
        none = np.zeros(n, bool)
        rows = self.assigned | self.shadowed
        if not rows.any():
            return ml, ml_rows, none
        try:
            scores = _score(challenger.score, X, rows)
            _check_finite(scores)
        except Exception as exc:
            log.warning("challenger %s failed on %d rows: %s", challenger.version, n, exc)
            self.answers = none
            if not self.assigned.any():
                return ml, ml_rows, none
            try:  # its canary rows go back to the champion
                backup = _score(champion.score, X, self.assigned)
                _check_finite(backup)
            except Exception:
                return ml, ml_rows, self.assigned
            return (*_union((ml, ml_rows), (backup, self.assigned)), none)
        if self.shadowed.any():
            full = np.full(n, np.nan)
            full[rows] = scores.prediction
            self.prediction = np.where(self.shadowed, full, np.nan)
        if not self.assigned.any():
            return ml, ml_rows, none
        answered = scores if not self.shadowed.any() else _subset(scores, rows, self.assigned)
        return (*_union((ml, ml_rows), (answered, self.assigned)), none)

    def annotate(self, answers: Answers, version: str) -> None:
        in_arm = answers.by_ml | self.assigned
        arm = np.where(self.assigned, Arm.challenger, Arm.champion)
        answers.arm = [a if m else None for a, m in zip(arm.tolist(), in_arm.tolist(), strict=True)]
        answers.challenger_version = version
        answers.by_challenger = self.answers & answers.by_ml
        answers.challenger_prediction = self.prediction


def _subset(scores: Scores, rows: np.ndarray, keep: np.ndarray) -> Scores:
    """``scores`` computed on ``rows`` -> the part on ``keep`` (a subset of ``rows``)."""
    pick = keep[rows]
    idx = np.flatnonzero(pick).tolist()
    return Scores(
        prediction=scores.prediction[pick],
        confidence=scores.confidence[pick],
        risk_level=None if scores.risk_level is None else [scores.risk_level[i] for i in idx],
        contributing_factors=None
        if scores.contributing_factors is None
        else [scores.contributing_factors[i] for i in idx],
        extra={k: v[pick] for k, v in scores.extra.items()},
    )


def _union(
    a: tuple[Scores | None, np.ndarray], b: tuple[Scores, np.ndarray]
) -> tuple[Scores, np.ndarray]:
    """Two models' scores on disjoint rows -> one Scores on the union of their rows."""
    (sa, ma), (sb, mb) = a, b
    if sa is None or not ma.any():
        return sb, mb
    union = ma | mb
    pos = np.cumsum(union) - 1  # each union row's index in the combined arrays
    ia, ib = pos[ma], pos[mb]
    m = int(union.sum())

    def numbers(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.empty(m, dtype=np.result_type(x, y))
        out[ia], out[ib] = x, y
        return out

    def objects(x: Sequence[Any] | None, y: Sequence[Any] | None) -> list[Any] | None:
        if x is None and y is None:
            return None
        out: list[Any] = [None] * m
        for i, v in zip(ia.tolist(), x or [None] * len(ia), strict=True):
            out[i] = v
        for i, v in zip(ib.tolist(), y or [None] * len(ib), strict=True):
            out[i] = v
        return out

    extra = {k: numbers(sa.extra[k], sb.extra[k]) for k in sa.extra.keys() & sb.extra.keys()}
    combined = Scores(
        prediction=numbers(sa.prediction, sb.prediction),
        confidence=numbers(sa.confidence, sb.confidence),
        risk_level=objects(sa.risk_level, sb.risk_level),
        contributing_factors=objects(sa.contributing_factors, sb.contributing_factors),
        extra=extra,
    )
    return combined, union
