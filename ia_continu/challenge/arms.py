"""The challenger arm's state, in the database: start, advance, hold, abort, promote.

Every change runs inside ``registry.registry_session`` (the registry lock), like every change
of champion: an analysis advancing a canary never races an operator's promote or rollback,
and each step writes its audit row (``model_events``) with its numbers and reason in the same
transaction. The serving side reads the active arm (``active``) on each champion poll.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.config import Settings
from ia_continu.learn import registry
from ia_continu.store.tables import ChallengerArm, utcnow
from ia_continu.vocab import ArmMode, ArmStatus, ModelEventKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveArm:
    """What serving needs of the active arm (a replica's snapshot, replaced whole)."""

    id: int
    version: str
    mode: ArmMode
    percentage: float  # canary share of the ML traffic, %; 0 in shadow
    shadow_rate: float  # share of the champion's ML rows the challenger also scores

    @classmethod
    def of(cls, row: ChallengerArm) -> LiveArm:
        return cls(row.id, row.version, ArmMode(row.mode), row.percentage, row.shadow_rate)


def active(session: Session, family: str) -> ChallengerArm | None:
    return session.scalars(
        select(ChallengerArm).where(
            ChallengerArm.family == family, ChallengerArm.status == ArmStatus.active
        )
    ).first()


def history(session: Session, family: str, limit: int = 20) -> list[ChallengerArm]:
    """The model's arms, newest first (the active one, if any, among them)."""
    return list(
        session.scalars(
            select(ChallengerArm)
            .where(ChallengerArm.family == family)
            .order_by(ChallengerArm.id.desc())
            .limit(limit)
        )
    )


def _audit(
    session: Session,
    arm: ChallengerArm,
    kind: ModelEventKind,
    reason: str,
    numbers: dict[str, Any] | None,
) -> None:
    registry.record_event(
        session,
        arm.family,
        kind,
        version=arm.version,
        previous_version=arm.champion_version,
        reason=reason[:2000],
        metrics={
            "arm_id": arm.id,
            "mode": arm.mode,
            "step": arm.step,
            "percentage": arm.percentage,
            **(numbers or {}),
        },
    )


def _require_lock(session: Session) -> None:
    if not session.info.get(registry.LOCKED):
        raise RuntimeError("challenger arms change only inside registry.registry_session")


def start(
    session: Session,
    settings: Settings,
    version: str,
    *,
    champion: str | None,
    reason: str,
    policy: ChallengerPolicy | None = None,
) -> ChallengerArm:
    """Put ``version`` in a live arm against ``champion``, per the model's policy.

    An arm already live for this model is aborted first: the newer challenger replaces it.
    """
    _require_lock(session)
    policy = policy or ChallengerPolicy.of(settings)
    if not policy.live:
        raise ValueError("policy 'direct' has no live arm: the gate promotes at once")
    if (current := active(session, settings.family)) is not None:
        abort(session, current, f"replaced by challenger {version}", None)
    mode = policy.first_mode
    now = utcnow()
    arm = ChallengerArm(
        family=settings.family,
        version=version,
        champion_version=champion,
        policy=policy.name,
        mode=mode,
        step=-1 if mode == ArmMode.shadow else 0,
        percentage=0.0 if mode == ArmMode.shadow else policy.steps[0],
        shadow_rate=policy.shadow_rate,
        status=ArmStatus.active,
        reason=reason[:2000],
        started_at=now,
        step_started_at=now,
        updated_at=now,
    )
    session.add(arm)
    session.flush()
    _audit(session, arm, ModelEventKind.challenger_started, reason, {"policy": policy.name})
    return arm


def advance(
    session: Session,
    settings: Settings,
    arm: ChallengerArm,
    reason: str,
    numbers: dict[str, Any] | None = None,
    policy: ChallengerPolicy | None = None,
) -> str:
    """One step forward: shadow -> first canary step (or champion, for policy ``shadow``),
    canary step i -> i + 1, past the last step -> champion. Returns "step" or "promoted"."""
    _require_lock(session)
    policy = policy or ChallengerPolicy.of(settings)
    if arm.mode == ArmMode.shadow and arm.policy == "shadow-then-canary":
        arm.mode, arm.step, arm.percentage = ArmMode.canary, 0, policy.steps[0]
    elif arm.mode == ArmMode.canary and arm.step + 1 < len(policy.steps):
        arm.step += 1
        arm.percentage = policy.steps[arm.step]
    else:
        promote(session, settings, arm, reason, numbers)
        return "promoted"
    arm.step_started_at = utcnow()
    arm.last_verdict = _verdict("advance", reason, numbers)
    session.flush()
    _audit(session, arm, ModelEventKind.challenger_advanced, reason, numbers)
    return "step"


def hold(
    session: Session, arm: ChallengerArm, reason: str, numbers: dict[str, Any] | None = None
) -> None:
    """Inconclusive (too few outcomes, no significant difference yet): nothing moves."""
    _require_lock(session)
    arm.last_verdict = _verdict("hold", reason, numbers)
    session.flush()
    _audit(session, arm, ModelEventKind.challenger_held, reason, numbers)


def abort(
    session: Session, arm: ChallengerArm, reason: str, numbers: dict[str, Any] | None = None
) -> None:
    """Back to the champion alone: the arm is cleared, every replica stops using it."""
    _require_lock(session)
    arm.status = ArmStatus.aborted
    arm.ended_at = utcnow()
    arm.percentage = 0.0
    arm.last_verdict = _verdict("abort", reason, numbers)
    session.flush()
    _audit(session, arm, ModelEventKind.challenger_aborted, reason, numbers)


def promote(
    session: Session,
    settings: Settings,
    arm: ChallengerArm,
    reason: str,
    numbers: dict[str, Any] | None = None,
) -> None:
    """The challenger becomes champion (the registry's history and alias move with it)."""
    _require_lock(session)
    previous = registry.champion_version(session, settings.family)
    arm.status = ArmStatus.promoted
    arm.ended_at = utcnow()
    arm.last_verdict = _verdict("advance", reason, numbers)
    session.flush()
    if previous != arm.version:
        registry.set_champion(session, settings, arm.version, reason=reason, previous=previous)
        registry.record_event(
            session,
            settings.family,
            ModelEventKind.promote,
            version=arm.version,
            previous_version=previous,
            reason=reason[:2000],
        )
    _audit(session, arm, ModelEventKind.challenger_promoted, reason, numbers)


def _verdict(verdict: str, reason: str, numbers: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "reason": reason[:2000],
        "at": utcnow().isoformat(),
        **(numbers or {}),
    }
