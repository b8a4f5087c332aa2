"""The prediction path: rollout decision, ML or fallback, shadow answers, and the log row.

Works on whole batches with numpy: a single prediction is a batch of one.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat
from typing import Any

import numpy as np

from ia_continu.config import Settings
from ia_continu.errors import ModelFailure
from ia_continu.families import ModelFamily
from ia_continu.families.base import Scores
from ia_continu.log.writer import PredictionLogWriter
from ia_continu.serve import rollout
from ia_continu.serve.champion import ModelHolder
from ia_continu.store.tables import utcnow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Context:
    """Per-row identifiers, as columns (one entry per row, or None for the whole column)."""

    request_ids: list[str | None] | None = None
    booking_ids: list[str | None] | None = None
    driver_ids: list[str | None] | None = None


@dataclass(slots=True)
class Answers:
    """The answers to one call, column by column (a single prediction is a batch of one).

    Columns keep the hot path in numpy; rows (``row(i)``) are built only when asked for,
    and the prediction log expands them in its own thread.
    """

    request_ids: list[str]
    prediction: np.ndarray
    confidence: np.ndarray
    by_ml: np.ndarray  # bool: who answered each row
    decision: np.ndarray  # object: why
    model_version: str | None  # the ML model's version (fallback rows say "fallback")
    latency_ms: float  # per row
    created_at: datetime
    risk_level: list[str] | None = None
    contributing_factors: list[dict[str, float] | None] | None = None
    probability: np.ndarray | None = None
    ml_prediction: np.ndarray | None = None  # NaN where not computed
    fallback_prediction: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.request_ids)

    def row(self, i: int) -> dict[str, Any]:
        by_ml = bool(self.by_ml[i])
        out = {
            "request_id": self.request_ids[i],
            "prediction": float(self.prediction[i]),
            "confidence": round(float(self.confidence[i]), 6),
            "model_version": self.model_version if by_ml else "fallback",
            "served_by": "ml" if by_ml else "fallback",
            "decision": str(self.decision[i]),
            "risk_level": self.risk_level[i] if self.risk_level else None,
            "contributing_factors": (
                self.contributing_factors[i] if self.contributing_factors else None
            ),
            "latency_ms": round(self.latency_ms, 4),
            "timestamp": self.created_at.isoformat() + "Z",
        }
        if self.probability is not None and self.probability[i] == self.probability[i]:
            out["probability"] = round(float(self.probability[i]), 6)  # ML rows only
        return out


@dataclass(slots=True)
class LogChunk:
    """What the prediction log needs of one call; expanded into rows by the writer thread."""

    family: str
    features: np.ndarray
    context: Context
    answers: Answers
    rollout_percentage: float

    def __len__(self) -> int:
        return len(self.answers)

    def rows(self) -> list[tuple[Any, ...]]:
        """The log rows, in ``prediction_log.LOG_COLUMNS`` order, JSON columns encoded."""
        a, n = self.answers, len(self.answers)
        none = [None] * n
        ml = _nan_to_none(a.ml_prediction, n)
        fb = _nan_to_none(a.fallback_prediction, n)
        factors = [None if f is None else json.dumps(f) for f in a.contributing_factors or none]
        features = [json.dumps(x) for x in self.features.tolist()]
        served = ["ml" if m else "fallback" for m in a.by_ml.tolist()]
        versions = [a.model_version if m == "ml" else "fallback" for m in served]
        # One column per entry of LOG_COLUMNS, zipped into rows (constants repeated).
        return list(
            zip(
                a.request_ids,
                self.context.booking_ids or none,
                self.context.driver_ids or none,
                repeat(self.family, n),
                features,
                a.prediction.tolist(),
                np.round(a.confidence, 6).tolist(),
                a.risk_level or none,
                factors,
                versions,
                repeat(a.latency_ms, n),
                a.decision.tolist(),
                served,
                repeat(self.rollout_percentage, n),
                ml,
                fb,
                repeat(a.created_at, n),
                repeat(a.created_at, n),
                strict=True,
            )
        )


def _nan_to_none(values: np.ndarray | None, n: int) -> list[float | None]:
    if values is None:
        return [None] * n
    return [None if v != v else v for v in values.tolist()]  # v != v: NaN


class Predictor:
    def __init__(
        self,
        settings: Settings,
        holder: ModelHolder,
        flags: rollout.RolloutCache,
        writer: PredictionLogWriter | None,
        alarm: rollout.ErrorRateAlarm | None = None,
        observe=None,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.family: ModelFamily = holder.family
        self.flags = flags
        self.writer = writer
        self.alarm = alarm
        self.observe = observe  # callback(decisions, latency_s, served_model) for Prometheus

    def predict(self, X: np.ndarray, context: Context | None = None) -> Answers:
        """Answer every row of X (already validated); hand the answers to the log."""
        started = time.perf_counter()
        n = len(X)
        context = context or Context()
        state = self.flags.get()
        served = self.holder.current
        ids = list(context.request_ids) if context.request_ids else [None] * n
        missing = [i for i, request_id in enumerate(ids) if not request_id]
        for i, new_id in zip(missing, _new_ids(len(missing)), strict=True):
            ids[i] = new_id

        if served is None:
            decision = np.full(n, rollout.FALLBACK_NO_MODEL, dtype=object)
        elif not state.enabled:
            decision = np.full(n, rollout.FALLBACK_DISABLED, dtype=object)
        elif state.percentage >= 100:
            decision = np.full(n, rollout.ML, dtype=object)
        else:
            share = np.fromiter((rollout.in_share(i, state.percentage) for i in ids), bool, n)
            decision = np.where(share, rollout.ML, rollout.FALLBACK_SHARE).astype(object)

        use_ml = decision == rollout.ML
        # Shadow mode: for a sample of ids, compute the answer that was *not* served too.
        shadow = np.zeros(n, bool)
        if served is not None and state.shadow_rate > 0:
            shadow = np.fromiter(
                (rollout.in_shadow_sample(i, state.shadow_rate) for i in ids), bool, n
            )

        ml_rows = use_ml | shadow
        ml_scores: Scores | None = None
        ml_failed = 0
        if served is not None and ml_rows.any():
            try:
                scores = _subset_scores(served.score, X, ml_rows)
                _check_finite(scores)
                ml_scores = scores
            except Exception as exc:
                ml_failed = int(use_ml.sum())
                log.warning("ML model %s failed on %d rows: %s", served.version, n, exc)
                if use_ml.any() and not state.fallback_on_error:
                    self._record_alarm(ml_failed, ml_failed)
                    raise ModelFailure(f"model {served.version} failed: {exc}") from exc
                decision[use_ml] = rollout.FALLBACK_ERROR
                use_ml = np.zeros(n, bool)
                ml_rows = use_ml
        fb_rows = ~use_ml | (shadow & (ml_scores is not None))
        fb_scores = _subset_scores(self.family.fallback, X, fb_rows) if fb_rows.any() else None

        ml_full = _spread(ml_scores, ml_rows, n)
        fb_full = _spread(fb_scores, fb_rows, n)
        pick = _pick(use_ml, ml_full, fb_full)
        answers = Answers(
            request_ids=ids,
            prediction=pick("prediction"),
            confidence=pick("confidence"),
            by_ml=use_ml,
            decision=decision,
            model_version=served.version if served is not None else None,
            latency_ms=(time.perf_counter() - started) * 1000.0 / max(n, 1),
            created_at=utcnow(),
            risk_level=_pick_list(use_ml, ml_full, fb_full, "risk_level"),
            contributing_factors=_pick_list(use_ml, ml_full, fb_full, "contributing_factors"),
            probability=pick("probability"),
            ml_prediction=ml_full["prediction"] if ml_full else None,
            fallback_prediction=fb_full["prediction"] if fb_full else None,
        )
        if self.writer is not None:
            self.writer.submit_chunk(
                LogChunk(
                    self.family.name,
                    X,
                    context,
                    answers,
                    state.percentage if state.enabled else 0.0,
                )
            )
        self._record_alarm(int(use_ml.sum()) + ml_failed, ml_failed)
        if self.observe is not None:
            self.observe(decision, time.perf_counter() - started, answers.model_version)
        return answers

    def _record_alarm(self, attempts: int, failures: int) -> None:
        if self.alarm is not None and attempts:
            self.alarm.record(int(attempts), int(failures))


def _subset_scores(score, X: np.ndarray, mask: np.ndarray) -> Scores:
    return score(X if mask.all() else X[mask])


def _check_finite(scores: Scores) -> None:
    # A model that answers NaN or infinity has failed as surely as one that raises: its rows
    # take the same path (the fallback, or a 503 when the rollout says not to fall back).
    if not (np.isfinite(scores.prediction).all() and np.isfinite(scores.confidence).all()):
        raise ValueError("the model answered a non-finite prediction or confidence")


def _spread(scores: Scores | None, mask: np.ndarray, n: int) -> dict[str, Any] | None:
    """Scores computed on ``mask`` rows -> full-length columns (NaN / None elsewhere)."""
    if scores is None:
        return None
    out: dict[str, Any] = {}
    for name, values in (
        ("prediction", scores.prediction),
        ("confidence", scores.confidence),
        ("probability", scores.extra.get("probability")),
    ):
        if values is None:
            continue
        if mask.all():
            out[name] = np.asarray(values, dtype=float)
        else:
            full = np.full(n, np.nan)
            full[mask] = values
            out[name] = full
    for name in ("risk_level", "contributing_factors"):
        values = getattr(scores, name)
        if values is None:
            continue
        if mask.all():
            out[name] = list(values)
        else:
            full_list: list[Any] = [None] * n
            for i, v in zip(np.flatnonzero(mask).tolist(), values, strict=True):
                full_list[i] = v
            out[name] = full_list
    return out


def _pick(use_ml: np.ndarray, ml: dict | None, fb: dict | None):
    """Column ``name`` of whoever answered each row."""

    def pick(name: str) -> np.ndarray | None:
        a = ml.get(name) if ml else None
        b = fb.get(name) if fb else None
        if a is None and b is None:
            return None
        if a is None:
            return b if not use_ml.any() else np.where(use_ml, np.nan, b)
        if b is None:
            return a if use_ml.all() else np.where(use_ml, a, np.nan)
        return np.where(use_ml, a, b)

    return pick


def _pick_list(use_ml: np.ndarray, ml: dict | None, fb: dict | None, name: str) -> list | None:
    a = ml.get(name) if ml else None
    b = fb.get(name) if fb else None
    if a is None and b is None:
        return None
    if use_ml.all() and a is not None:
        return a
    if not use_ml.any() and b is not None:
        return b
    none = [None] * len(use_ml)
    a, b = a or none, b or none
    return [x if m else y for m, x, y in zip(use_ml.tolist(), a, b, strict=True)]


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _new_ids(count: int) -> list[str]:
    """``count`` random UUID4s as 32 hex digits (what ``uuid.uuid4().hex`` gives), from one
    ``os.urandom`` call: ``uuid4()`` per row cost 25 ms of a 10,000-row batch."""
    raw = os.urandom(16 * count).hex()
    return [
        f"{h[:12]}4{h[13:16]}{_VARIANT[h[16]]}{h[17:]}"
        for h in (raw[k : k + 32] for k in range(0, 32 * count, 32))
    ]
