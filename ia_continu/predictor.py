"""The prediction path: rollout decision, ML or fallback, shadow answers, and the log row.

Works on whole batches with numpy: a single prediction is a batch of one.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from ia_continu import rollout
from ia_continu.config import Settings
from ia_continu.families import ModelFamily
from ia_continu.families.base import Scores
from ia_continu.models import utcnow
from ia_continu.prediction_log import PredictionLogWriter
from ia_continu.serving import ModelHolder

log = logging.getLogger(__name__)


class ModelFailure(RuntimeError):
    """The ML model failed and the rollout says not to fall back."""


@dataclass(slots=True)
class Context:
    request_id: str | None = None
    booking_id: str | None = None
    driver_id: str | None = None


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

    def predict(self, X: np.ndarray, contexts: list[Context]) -> list[dict[str, Any]]:
        """Answer every row of X (already validated); log each answer."""
        started = time.perf_counter()
        n = len(X)
        state = self.flags.get()
        served = self.holder.current
        ids = [c.request_id or uuid.uuid4().hex for c in contexts]

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
                ml_scores = _subset_scores(served.score, X, ml_rows)
            except Exception as exc:
                ml_failed = int(use_ml.sum())
                log.warning("ML model %s failed on %d rows: %s", served.version, n, exc)
                if use_ml.any() and not state.fallback_on_error:
                    self._record_alarm(use_ml.sum(), ml_failed)
                    raise ModelFailure(f"model {served.version} failed: {exc}") from exc
                decision[use_ml] = rollout.FALLBACK_ERROR
                use_ml = np.zeros(n, bool)
                shadow[:] = False
        fb_rows = ~use_ml | shadow
        fb_scores = _subset_scores(self.family.fallback, X, fb_rows) if fb_rows.any() else None

        latency_ms = (time.perf_counter() - started) * 1000.0 / max(n, 1)
        now = utcnow()
        version = served.version if served is not None else None
        out: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        ml_pos = np.cumsum(ml_rows) - 1
        fb_pos = np.cumsum(fb_rows) - 1
        features = X.tolist()
        for i in range(n):
            by_ml = bool(use_ml[i])
            src, j = (ml_scores, ml_pos[i]) if by_ml else (fb_scores, fb_pos[i])
            ml_value = float(ml_scores.prediction[ml_pos[i]]) if ml_rows[i] and ml_scores else None
            fb_value = float(fb_scores.prediction[fb_pos[i]]) if fb_rows[i] and fb_scores else None
            prediction = float(src.prediction[j])
            result = {
                "request_id": ids[i],
                "prediction": prediction,
                "confidence": round(float(src.confidence[j]), 6),
                "model_version": version if by_ml else "fallback",
                "served_by": "ml" if by_ml else "fallback",
                "decision": str(decision[i]),
                "risk_level": src.risk_level[j] if src.risk_level else None,
                "contributing_factors": (
                    src.contributing_factors[j] if src.contributing_factors else None
                ),
                "latency_ms": round(latency_ms, 4),
                "timestamp": now.isoformat() + "Z",
            }
            if "probability" in src.extra:
                result["probability"] = round(float(src.extra["probability"][j]), 6)
            out.append(result)
            ctx = contexts[i]
            rows.append(
                {
                    "request_id": ids[i],
                    "booking_id": ctx.booking_id,
                    "driver_id": ctx.driver_id,
                    "family": self.family.name,
                    "features": features[i],
                    "prediction": prediction,
                    "confidence": result["confidence"],
                    "risk_level": result["risk_level"],
                    "contributing_factors": result["contributing_factors"],
                    "model_version": result["model_version"],
                    "latency_ms": latency_ms,
                    "decision": result["decision"],
                    "served_by": result["served_by"],
                    "rollout_percentage": state.percentage if state.enabled else 0.0,
                    "ml_prediction": ml_value,
                    "fallback_prediction": fb_value,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if self.writer is not None:
            self.writer.submit(rows)
        self._record_alarm(int((decision == rollout.ML).sum()) + ml_failed, ml_failed)
        if self.observe is not None:
            self.observe(decision, time.perf_counter() - started, version)
        return out

    def _record_alarm(self, attempts: int, failures: int) -> None:
        if self.alarm is not None and attempts:
            self.alarm.record(int(attempts), int(failures))


def _subset_scores(score, X: np.ndarray, mask: np.ndarray) -> Scores:
    return score(X if mask.all() else X[mask])
