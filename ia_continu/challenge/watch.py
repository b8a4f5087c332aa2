"""After a promotion: is the new champion doing worse live than the one it replaced?

Within ``watch_hours`` of the latest promotion (``champion_history``), the new champion's
gate metric on the rows it answered since (with their outcomes) is compared with the
previous champion's on the rows it answered in the ``watch_hours`` before the promotion.
``check`` rolls back when the new one is significantly worse than the previous one by more
than ``rollback_margin`` (the always-valid sequential p-value of ``stats`` around that
margin, below the policy's alpha: it is looked at every run), each side having
``min_labelled`` outcomes: a noisy dip on a few rows is not enough.

Each promotion is judged for rollback at most once: a rollback is itself the latest change
of champion, so the promotion it undid is no longer watched, and the audit row names the
promotion (its history id) it answered.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ia_continu.challenge.analysis import (
    finite_or_none,
    metric_test,
    metric_value,
    sequential_tau,
)
from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.config import Settings
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.learn.registry import UtcTimestamp
from ia_continu.store.tables import ChampionHistory, ModelEvent, PredictionLog, utcnow
from ia_continu.vocab import ChampionAction, ModelEventKind, ServedBy

P = PredictionLog
WatchVerdict = Literal["rollback", "keep", "wait"]


class ChampionWatch(BaseModel):
    """A new champion against the one it replaced, and whether to roll it back."""

    family: str
    promotion_id: int
    version: str
    previous_version: str
    promoted_at: UtcTimestamp
    watch_until: UtcTimestamp
    metric: str
    higher_is_better: bool
    margin: float
    new_labelled: int
    previous_labelled: int
    new_metric: float | None
    previous_metric: float | None
    test: str | None = None
    p_worse: float | None = None
    p_sequential: float | None = None  # the always-valid p-value the verdict reads
    difference: float | None = None  # new - previous, in the metric's units
    verdict: WatchVerdict
    reason: str

    def numbers(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude={"reason", "verdict", "family"})
        return {k: finite_or_none(v) for k, v in out.items()}


def latest_promotion(session: Session, family: str) -> ChampionHistory | None:
    """The newest change of champion if it is a promotion (a rollback is never watched)."""
    row = session.scalars(
        select(ChampionHistory)
        .where(ChampionHistory.family == family)
        .order_by(ChampionHistory.id.desc())
        .limit(1)
    ).first()
    return row if row is not None and row.action == ChampionAction.promote else None


def already_answered(session: Session, family: str, promotion_id: int) -> bool:
    rows = session.scalars(
        select(ModelEvent.metrics).where(
            ModelEvent.family == family, ModelEvent.event == ModelEventKind.auto_rollback
        )
    ).all()
    return any((m or {}).get("promotion_id") == promotion_id for m in rows)


def _rows(
    session: Session, family: str, version: str, start: datetime, end: datetime
) -> tuple[Any, Any]:
    import numpy as np

    found = session.execute(
        select(P.prediction, P.actual).where(
            P.family == family,
            P.model_version == version,
            P.served_by == ServedBy.ml,
            P.actual.is_not(None),
            P.created_at >= start,
            P.created_at < end,
        )
    ).all()
    a = np.array(found, dtype=np.float64).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def check(
    session: Session, settings: Settings, now: datetime | None = None
) -> ChampionWatch | None:
    """The watch of the model's latest promotion; None when nothing is being watched (no
    promotion, no previous champion, watch over or off, or already rolled back)."""
    now = now or utcnow()
    policy = ChallengerPolicy.of(settings)
    if policy.watch_hours <= 0:
        return None
    promotion = latest_promotion(session, settings.family)
    if promotion is None or promotion.previous_version is None:
        return None
    window = timedelta(hours=policy.watch_hours)
    promoted_at = promotion.created_at
    if now - promoted_at > window or already_answered(session, settings.family, promotion.id):
        return None
    family = get_family(settings.family, settings)
    metric = family.primary_metric
    new = _rows(session, settings.family, promotion.version, promoted_at, now)
    old = _rows(
        session, settings.family, promotion.previous_version, promoted_at - window, promoted_at
    )
    new_metric = metric_value(family, metric, *new)
    old_metric = metric_value(family, metric, *old)
    base: dict[str, Any] = {
        "family": settings.family,
        "promotion_id": promotion.id,
        "version": promotion.version,
        "previous_version": promotion.previous_version,
        "promoted_at": promoted_at,
        "watch_until": promoted_at + window,
        "metric": metric,
        "higher_is_better": family.higher_is_better,
        "margin": policy.rollback_margin,
        "new_labelled": len(new[0]),
        "previous_labelled": len(old[0]),
        "new_metric": new_metric,
        "previous_metric": old_metric,
    }
    need = policy.min_labelled
    if len(new[0]) < need or len(old[0]) < need or new_metric is None or old_metric is None:
        return ChampionWatch(
            **base,
            verdict="wait",
            reason=f"too few outcomes to judge: {len(new[0])} for version {promotion.version} "
            f"since its promotion, {len(old[0])} for {promotion.previous_version} before it, "
            f"{need} needed in each",
        )
    out, _ = metric_test(
        family, metric, False, (*new, *old), old_metric, policy.rollback_margin, policy.alpha
    )
    said = (
        f"{metric} {new_metric:.4g} for version {promotion.version} since its promotion "
        f"({len(new[0])} rows) against {old_metric:.4g} for {promotion.previous_version} "
        f"before it ({len(old[0])} rows), {out.test}"
    )
    # Looked at every run for watch_hours: the always-valid p-value, as for the arm.
    p_seq = out.sequential_p(sequential_tau(out, min(len(new[0]), len(old[0])), need))
    more = {
        "test": out.test,
        "p_worse": finite_or_none(out.p_worse),
        "p_sequential": p_seq,
        "difference": new_metric - old_metric,
    }
    if p_seq < policy.alpha and out.gain < -out.margin:
        return ChampionWatch(
            **base,
            **more,
            verdict="rollback",
            reason=f"worse than the previous champion by more than {policy.rollback_margin:g}: "
            f"{said}, sequential p={p_seq:.3g} < {policy.alpha:g}",
        )
    return ChampionWatch(**base, **more, verdict="keep", reason=f"not significantly worse: {said}")


def roll_back(engine: Engine, settings: Settings, found: ChampionWatch) -> bool:
    """Restore the previous champion for ``found`` (a "rollback" verdict), audited as
    ``auto_rollback`` with its numbers in the same transaction. Checked again under the
    registry lock: False (nothing done) if the champion changed meanwhile or this promotion
    was already answered."""
    with registry.registry_session(engine, settings) as session:
        promotion = latest_promotion(session, settings.family)
        current = registry.champion(session, settings)
        if (
            promotion is None
            or promotion.id != found.promotion_id
            or current.champion_version != found.version
            or current.previous_version is None
            or already_answered(session, settings.family, found.promotion_id)
        ):
            return False
        reason = f"automatic rollback: {found.reason}"[:2000]
        registry.roll_back_to(
            session, settings, current.previous_version, from_version=found.version, reason=reason
        )
        registry.record_event(
            session,
            settings.family,
            ModelEventKind.auto_rollback,
            version=current.previous_version,
            previous_version=found.version,
            reason=reason,
            metrics=found.numbers(),
        )
    return True
