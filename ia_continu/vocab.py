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
    # The challenger arm (ia_continu.challenge): every step of a live comparison.
    challenger_started = "challenger_started"
    challenger_advanced = "challenger_advanced"
    challenger_held = "challenger_held"
    challenger_aborted = "challenger_aborted"
    challenger_promoted = "challenger_promoted"
    auto_rollback = "auto_rollback"  # a new champion that did worse live than the previous one


class Arm(StrEnum):
    """Which arm a request routed to ML was assigned to while a challenger is live (the log's
    ``arm`` column; NULL when no challenger is live or the fallback's share took the row)."""

    champion = "champion"
    challenger = "challenger"


class ArmMode(StrEnum):
    """How a live challenger takes part: scored beside the champion, or answering a share."""

    shadow = "shadow"
    canary = "canary"


class ArmStatus(StrEnum):
    """A challenger arm's life: live, then made champion or cleared."""

    active = "active"
    promoted = "promoted"
    aborted = "aborted"


class ChampionAction(StrEnum):
    """A row of the champion history: promote pushes a version, rollback pops one."""

    promote = "promote"
    rollback = "rollback"


class LoopEvent(StrEnum):
    """Prefect events that flows emit and deployment triggers listen to."""

    drift_detected = "ia-continu.drift.detected"
    performance_degraded = "ia-continu.performance.degraded"
    # The champion stayed past its retrain limit over every recent window (concept drift).
    degradation_sustained = "ia-continu.performance.sustained-degradation"
    retrain_completed = "ia-continu.retrain.completed"
    challenger_started = "ia-continu.challenger.started"
    outcomes_recorded = "ia-continu.outcomes.recorded"
