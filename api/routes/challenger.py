"""The challenger arm's endpoints: read it with its live comparison; start, abort or advance
it by hand (admin).

Mounted at ``/challenger`` (the default model) and ``/models/{model}/challenger``. Every
change runs under the registry lock (``registry.registry_session``), like the analysis flow's
and every change of champion, and is audited in ``model_events`` like theirs; an operator's
step says so in its reason and numbers (``"by": "operator"``). This process serves the new
state before answering, the other replicas within a champion poll.
"""

from __future__ import annotations

import dataclasses
import logging

from fastapi import APIRouter
from sqlalchemy.orm import Session

from api.deps import Admin, ModelDep, RuntimeDep, SessionDep
from api.errors import error_responses
from api.guards import KeyFirstRoute
from api.runtime import ModelService, Runtime
from api.schemas import (
    ChallengerActionRequest,
    ChallengerArmPublic,
    ChallengerChangePublic,
    ChallengerPolicyPublic,
    ChallengerPublic,
    ChallengerStartRequest,
)
from ia_continu.challenge import arms
from ia_continu.challenge.analysis import Comparison, compare
from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.errors import ChallengerRefused, NoLiveChallenger, UnknownVersion
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.store.tables import ChallengerArm
from ia_continu.vocab import ModelEventKind

log = logging.getLogger(__name__)

# Mounted at /challenger (the default model) and /models/{model}/challenger (api/main.py).
router = APIRouter(tags=["challenger"], route_class=KeyFirstRoute)

STEP_EVENTS = (
    ModelEventKind.challenger_started,
    ModelEventKind.challenger_advanced,
    ModelEventKind.challenger_held,
    ModelEventKind.challenger_aborted,
    ModelEventKind.challenger_promoted,
    ModelEventKind.auto_rollback,
)
OPERATOR = {"by": "operator"}


def _arm_public(arm: ChallengerArm) -> ChallengerArmPublic:
    return ChallengerArmPublic.model_validate(arm, from_attributes=True)


def _comparison(
    session: Session, model: ModelService, arm: ChallengerArm | None
) -> tuple[Comparison | None, str | None]:
    """The analysis' live comparison of the two arms, or why there is none. A failure to
    compute it is said in the answer, never a 500: the arm's state is still worth reading."""
    if arm is None:
        return None, None
    try:
        return compare(session, model.settings, arm), None
    except Exception as exc:
        log.warning("challenger comparison failed: %s", exc, exc_info=True)
        return None, f"{type(exc).__name__}: {exc}"


def status_of(session: Session, model: ModelService) -> ChallengerPublic:
    settings = model.settings
    policy = ChallengerPolicy.of(settings)
    active = arms.active(session, settings.family)
    recent = arms.history(session, settings.family, limit=10)
    served = model.holder.challenger
    comparison, comparison_error = _comparison(session, model, active)
    return ChallengerPublic(
        model=model.name,
        champion_version=registry.champion_version(session, settings.family),
        policy=ChallengerPolicyPublic(
            **{f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}
        ),
        active=None if active is None else _arm_public(active),
        served_challenger=served.model.version if served is not None else None,
        challenger_error=model.holder.challenger_error,
        comparison=comparison,
        comparison_error=comparison_error,
        last_verdict=recent[0].last_verdict if recent else None,
        recent=[_arm_public(a) for a in recent],
        steps=registry.model_events(session, settings.family, 30, kinds=STEP_EVENTS),
    )


def _changed(
    runtime: Runtime, model: ModelService, outcome: str, message: str
) -> ChallengerChangePublic:
    # This process serves the new state (arm, share, champion) before answering.
    model.holder.refresh()
    with session_scope(runtime.engine) as session:
        return ChallengerChangePublic(
            message=message, outcome=outcome, status=status_of(session, model)
        )


def _live(session: Session, model: ModelService) -> ChallengerArm:
    arm = arms.active(session, model.name)
    if arm is None:
        raise NoLiveChallenger(f"no challenger is live for {model.name} (GET .../challenger)")
    return arm


@router.get("/challenger", response_model=ChallengerPublic)
def get_challenger(runtime: RuntimeDep, model: ModelDep, session: SessionDep) -> ChallengerPublic:
    """The live arm (or null), the model's policy, the live comparison, the last verdict,
    the recent arms and their audited steps."""
    # Rows answered a moment ago may still wait in the writer's queue; make them count.
    runtime.writer.flush(timeout=2.0)
    return status_of(session, model)


@router.post(
    "/challenger",
    response_model=ChallengerChangePublic,
    dependencies=[Admin],
    responses=error_responses(UnknownVersion, ChallengerRefused),
)
def start_challenger(
    body: ChallengerStartRequest, runtime: RuntimeDep, model: ModelDep
) -> ChallengerChangePublic:
    """Put a registered version in a live arm against the champion, under the model's policy
    (a live arm already there is replaced, audited as aborted)."""
    settings = model.settings
    policy = ChallengerPolicy.of(settings)
    if not policy.live:
        raise ChallengerRefused(
            f"{model.name}'s challenger policy is 'direct': a version becomes champion at "
            "once (POST .../promote); set a live policy (shadow, canary, shadow-then-canary)"
        )
    version = body.version
    if not version.isdigit() or not registry.version_exists(settings, version):
        raise UnknownVersion(
            f"version '{version}' of {settings.registered_model_name} does not exist "
            "(GET /models lists them)"
        )
    with registry.registry_session(runtime.engine, settings) as session:
        champion = registry.champion_version(session, settings.family)
        if champion is None:
            raise ChallengerRefused(f"{model.name} has no champion to compare a challenger with")
        if champion == version:
            raise ChallengerRefused(f"version {version} is already the champion")
        arm = arms.start(
            session,
            settings,
            version,
            champion=champion,
            reason=f"started by an operator: {body.reason}",
            policy=policy,
        )
        how = f"{arm.mode} at {arm.percentage:g}%" if arm.percentage else str(arm.mode)
    return _changed(
        runtime, model, "started", f"version {version} is live against {champion} ({how})"
    )


@router.post(
    "/challenger/abort",
    response_model=ChallengerChangePublic,
    dependencies=[Admin],
    responses=error_responses(NoLiveChallenger),
)
def abort_challenger(
    body: ChallengerActionRequest, runtime: RuntimeDep, model: ModelDep
) -> ChallengerChangePublic:
    """Back to the champion alone: the live arm is cleared."""
    with registry.registry_session(runtime.engine, model.settings) as session:
        arm = _live(session, model)
        version = arm.version
        arms.abort(session, arm, f"aborted by an operator: {body.reason}", dict(OPERATOR))
    return _changed(runtime, model, "aborted", f"challenger {version} aborted")


@router.post(
    "/challenger/advance",
    response_model=ChallengerChangePublic,
    dependencies=[Admin],
    responses=error_responses(NoLiveChallenger),
)
def advance_challenger(
    body: ChallengerActionRequest, runtime: RuntimeDep, model: ModelDep
) -> ChallengerChangePublic:
    """An operator's override: the next step whatever the analysis says (past the last
    step, the challenger becomes champion)."""
    settings = model.settings
    with registry.registry_session(runtime.engine, settings) as session:
        arm = _live(session, model)
        outcome = arms.advance(
            session,
            settings,
            arm,
            f"operator override: {body.reason}",
            {**OPERATOR, "override": True},
        )
        if outcome == "promoted":
            message = f"challenger {arm.version} is champion (operator override)"
        else:
            where = f"canary {arm.percentage:g}%"
            message = f"challenger {arm.version} advanced to {where} (operator override)"
    return _changed(runtime, model, outcome, message)
