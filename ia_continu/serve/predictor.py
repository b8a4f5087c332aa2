"""The prediction path: who answers each row (ML or the fallback), and why.

For each row of a call: the rollout decides (``route``), the chosen scorer answers, a shadow
sample is scored by the other one too, and a model failure falls back (or fails the call,
when the flag says not to fall back). The answers go to the client and, off the request
path, to the prediction log. Works on whole batches with numpy: a single prediction is a
batch of one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import Engine

from ia_continu.config import Settings
from ia_continu.errors import ModelFailure
from ia_continu.families import ModelFamily
from ia_continu.families.base import Scores
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.serve.answers import Answers, Context, LogChunk, merge
from ia_continu.serve.bucketing import in_shadow_sample, in_share
from ia_continu.serve.champion import ModelHolder
from ia_continu.serve.flag import RolloutCache, RolloutState
from ia_continu.serve.ids import complete_ids
from ia_continu.store.engine import session_scope
from ia_continu.store.schemas import schema_id
from ia_continu.store.tables import utcnow
from ia_continu.vocab import Decision
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
    share = np.fromiter((in_share(i, state.percentage) for i in ids), bool, n)
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
            shadow = np.fromiter((in_shadow_sample(i, state.shadow_rate) for i in ids), bool, n)

        ml_rows = use_ml | shadow
        ml_scores: Scores | None = None
        ml_failed = 0
        if served is not None and ml_rows.any():
            try:
                scores = _score(served.score, X, ml_rows)
                _check_finite(scores)
                ml_scores = scores
            except Exception as exc:
                ml_failed = int(use_ml.sum())
                log.warning("ML model %s failed on %d rows: %s", served.version, n, exc)
                if use_ml.any() and not state.fallback_on_error:
                    self._record_alarm(ml_failed, ml_failed)
                    raise ModelFailure(f"model {served.version} failed: {exc}") from exc
                decision[use_ml] = Decision.fallback_error
                use_ml = np.zeros(n, bool)
                ml_rows = use_ml
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


def _check_finite(scores: Scores) -> None:
    # A model that answers NaN or infinity has failed as surely as one that raises: its rows
    # take the same path (the fallback, or a 503 when the rollout says not to fall back).
    if not (np.isfinite(scores.prediction).all() and np.isfinite(scores.confidence).all()):
        raise ValueError("the model answered a non-finite prediction or confidence")
