"""The loop's vocabulary: every word that is stored, sent or compared, as one enum each.

StrEnum members are plain strings on the wire and in the database (``Decision.ML == "ml"``),
so stored rows, JSON answers and Prefect events keep their values; the code gets a type to
check instead of a literal to mistype.
"""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    """What a model predicts: a binary label, one of several classes, or a number."""

    classification = "classification"  # binary: classes 0 and 1 (the second is "positive")
    multiclass = "multiclass"
    regression = "regression"


class ServedBy(StrEnum):
    """Who answered a request."""

    ml = "ml"
    fallback = "fallback"


class Decision(StrEnum):
    """Why a request was answered the way it was (the log's ``decision`` column)."""

    ml = "ml"
    fallback_disabled = "fallback_disabled"  # ML switched off
    fallback_share = "fallback_share"  # the request id's bucket is outside the ML share
    fallback_error = "fallback_error"  # ML failed on this request
    fallback_no_model = "fallback_no_model"  # no champion yet, or it cannot be loaded


class ModelEventKind(StrEnum):
    """What the audit log (``model_events``) records about versions."""

    retrain = "retrain"
    promote = "promote"
    reject = "reject"
    rollback = "rollback"
    failed = "failed"
    retrain_skipped = "retrain_skipped"


class ChampionAction(StrEnum):
    """A row of the champion history: promote pushes a version, rollback pops one."""

    promote = "promote"
    rollback = "rollback"


class LoopEvent(StrEnum):
    """Prefect events that flows emit and deployment triggers listen to."""

    drift_detected = "ia-continu.drift.detected"
    performance_degraded = "ia-continu.performance.degraded"
    retrain_completed = "ia-continu.retrain.completed"
