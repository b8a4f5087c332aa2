"""Model registry: MLflow keeps runs, artifacts and versions; the DB keeps who is champion.

MLflow aliases only know the present, so the champion's history (for rollback) lives in the
``champion_history`` table and the ``champion`` alias is kept in step for the MLflow UI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.errors import NothingToRollBack, UnknownVersion
from ia_continu.learn.tracking import load_sklearn_model, mlflow_client
from ia_continu.store.locks import exclusive, try_exclusive
from ia_continu.store.tables import ChallengerArm, ChampionHistory, ModelEvent, utcnow
from ia_continu.vocab import ArmStatus, ChampionAction, ModelEventKind

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
LOCKED = "ia_continu.registry_lock"  # session.info keys
_ALIAS_MOVED = "ia_continu.alias_moved"


# --- what the registry answers ---------------------------------------------------------------

# A naive UTC timestamp (as stored), sent as ISO 8601 without an offset, as it always was: not
# an RFC 3339 "date-time", which requires one, so the schema does not claim that format.
UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "description": "ISO 8601, UTC, without an offset"}),
]


class Champion(BaseModel):
    """Who is champion of a registered model, and what a rollback would restore."""

    model_config = ConfigDict(frozen=True)

    family: str
    registered_model: str
    champion_version: str | None
    previous_version: str | None = Field(description="the champion a rollback would restore")


class ChampionChange(Champion):
    """The champion after a promote or a rollback."""

    changed: bool = Field(
        description="false when nothing changed (promoting the version that is already champion)"
    )


# Run tag: SHA-256 of the declaration.json artifact of a declared model's training run.
DECLARATION_TAG = "ia_continu.declaration_sha256"


class ModelVersionInfo(BaseModel):
    """One registered version, with its training run's metrics and params."""

    version: str
    aliases: list[str]
    run_id: str | None
    run_name: str | None
    created_at: UtcTimestamp = Field(description="when the version was registered")
    metrics: dict[str, float]
    params: dict[str, str]
    declaration_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the declaration that trained it (its run's declaration.json)",
    )


class ChampionHistoryEntry(BaseModel):
    """One change of champion."""

    action: ChampionAction
    version: str
    previous_version: str | None
    reason: str
    at: UtcTimestamp


class ModelEventRecord(BaseModel):
    """One row of the audit log of the model lifecycle."""

    id: int
    event: ModelEventKind
    version: str | None
    previous_version: str | None
    reason: str
    metrics: dict[str, Any] | None
    at: UtcTimestamp


# --- versions (MLflow) -----------------------------------------------------------------------


def load_pipeline(settings: Settings, version: str) -> Any:
    """Load one registered version's scikit-learn pipeline (raises UnknownVersion)."""
    from mlflow.exceptions import MlflowException

    try:
        return load_sklearn_model(settings, settings.registered_model_name, version)
    except MlflowException as exc:
        raise UnknownVersion(f"model version {version} cannot be loaded: {exc.message}") from exc


def version_exists(settings: Settings, version: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client(settings).get_model_version(settings.registered_model_name, str(version))
        return True
    except MlflowException:
        return False


def list_versions(settings: Settings) -> list[ModelVersionInfo]:
    """Every registered version with its run's metrics and its aliases, newest first."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client(settings)
    try:
        versions = client.search_model_versions(f"name='{settings.registered_model_name}'")
        # search_model_versions leaves aliases empty; the registered model has them all.
        aliases: dict[str, list[str]] = {}
        for alias, v in client.get_registered_model(settings.registered_model_name).aliases.items():
            aliases.setdefault(str(v), []).append(alias)
    except MlflowException:
        return []
    out = []
    for mv in sorted(versions, key=lambda v: int(v.version), reverse=True):
        run = client.get_run(mv.run_id) if mv.run_id else None
        out.append(
            ModelVersionInfo(
                version=str(mv.version),
                aliases=sorted(aliases.get(str(mv.version), [])),
                run_id=mv.run_id,
                run_name=run.info.run_name if run else None,
                # Naive UTC, like every other timestamp we answer with.
                created_at=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).replace(
                    tzinfo=None
                ),
                metrics=dict(run.data.metrics) if run else {},
                params=dict(run.data.params) if run else {},
                declaration_sha256=run.data.tags.get(DECLARATION_TAG) if run else None,
            )
        )
    return out


# --- champion (DB) -------------------------------------------------------------------------


def _champion_stack(session: Session, family: str) -> list[str]:
    """Replay the history as a stack: promote pushes, rollback pops."""
    stack: list[str] = []
    rows = session.execute(
        select(ChampionHistory.action, ChampionHistory.version)
        .where(ChampionHistory.family == family)
        .order_by(ChampionHistory.id)
    ).all()
    for action, version in rows:
        if action == ChampionAction.rollback:
            if stack:
                stack.pop()
        elif not stack or stack[-1] != version:
            stack.append(version)
    return stack


def champion_version(session: Session, family: str) -> str | None:
    stack = _champion_stack(session, family)
    return stack[-1] if stack else None


def champion(session: Session, settings: Settings) -> Champion:
    stack = _champion_stack(session, settings.family)
    return Champion(
        family=settings.family,
        registered_model=settings.registered_model_name,
        champion_version=stack[-1] if stack else None,
        previous_version=stack[-2] if len(stack) > 1 else None,
    )


def champion_marker(session: Session, family: str) -> int:
    """A cheap token that changes whenever the champion may have changed (for polling)."""
    return (
        session.scalar(
            select(ChampionHistory.id)
            .where(ChampionHistory.family == family)
            .order_by(ChampionHistory.id.desc())
            .limit(1)
        )
        or 0
    )


def champion_history(session: Session, family: str, limit: int = 50) -> list[ChampionHistoryEntry]:
    rows = session.scalars(
        select(ChampionHistory)
        .where(ChampionHistory.family == family)
        .order_by(ChampionHistory.id.desc())
        .limit(limit)
    ).all()
    return [
        ChampionHistoryEntry(
            action=ChampionAction(r.action),
            version=r.version,
            previous_version=r.previous_version,
            reason=r.reason,
            at=r.created_at,
        )
        for r in rows
    ]


def model_events(
    session: Session,
    family: str,
    limit: int = 50,
    kinds: Iterable[ModelEventKind] | None = None,
) -> list[ModelEventRecord]:
    """The newest rows of the audit log, newest first (only ``kinds``, when given)."""
    query = select(ModelEvent).where(ModelEvent.family == family)
    if kinds is not None:
        query = query.where(ModelEvent.event.in_([str(k) for k in kinds]))
    rows = session.scalars(query.order_by(ModelEvent.id.desc()).limit(limit)).all()
    return [
        ModelEventRecord(
            id=r.id,
            event=ModelEventKind(r.event),
            version=r.version,
            previous_version=r.previous_version,
            reason=r.reason,
            metrics=r.metrics,
            at=r.created_at,
        )
        for r in rows
    ]


def record_event(
    session: Session,
    family: str,
    event: ModelEventKind,
    *,
    version: str | None = None,
    previous_version: str | None = None,
    reason: str = "",
    metrics: dict[str, Any] | None = None,
) -> ModelEvent:
    row = ModelEvent(
        family=family,
        event=str(event),
        version=version,
        previous_version=previous_version,
        reason=reason,
        metrics=metrics,
    )
    session.add(row)
    return row


def lock_name(settings: Settings) -> str:
    """The one lock every change of this registered model's champion takes."""
    return f"registry-{settings.registered_model_name}"


@contextmanager
def registry_session(engine: Engine, settings: Settings) -> Iterator[Session]:
    """Hold the registry lock, with a session that commits *before* the lock is released.

    Retrain's gate, promote and rollback all change the champion in here, so each one reads
    the state, writes its history row, moves the MLflow alias and commits while no other
    process can do the same: after any interleaving the DB and the alias agree, and every
    change is one history row. The alias is checked against the DB on entry (the DB wins),
    which repairs whatever a crash between moving it and committing left behind.
    """
    with exclusive(engine, lock_name(settings)) as conn:
        session = Session(bind=conn if conn is not None else engine, expire_on_commit=False)
        session.info[LOCKED] = True
        try:
            _sync_alias(session, settings)
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            if session.info.get(_ALIAS_MOVED):
                # The alias went ahead of a transaction that did not commit: put it back.
                _sync_alias(session, settings)
            raise
        finally:
            session.close()


def reconcile_alias(engine: Engine, settings: Settings) -> None:
    """Set the alias from the DB if they disagree; skipped (not waited for) while a change is
    under way, since that change sets the alias itself. Never raises."""
    try:
        with try_exclusive(engine, lock_name(settings)) as acquired:
            if not acquired:
                return
            with Session(bind=engine) as session:
                _sync_alias(session, settings)
    except Exception as exc:
        log.warning("champion alias check skipped: %s: %s", type(exc).__name__, exc)


def _alias_version(settings: Settings) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        model = mlflow_client(settings).get_registered_model(settings.registered_model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = model.aliases.get(CHAMPION_ALIAS)
    return None if version is None else str(version)


def _sync_alias(session: Session, settings: Settings) -> None:
    try:
        want = champion_version(session, settings.family)
        have = _alias_version(settings)
        if have == want:
            return
        log.warning(
            "MLflow alias %r of %s was %s but the DB champion is %s: set from the DB",
            CHAMPION_ALIAS,
            settings.registered_model_name,
            have,
            want,
        )
        client = mlflow_client(settings)
        if want is None:
            client.delete_registered_model_alias(settings.registered_model_name, CHAMPION_ALIAS)
        else:
            client.set_registered_model_alias(settings.registered_model_name, CHAMPION_ALIAS, want)
    except Exception as exc:  # the next change, or the next champion load, tries again
        log.warning("champion alias not reconciled: %s: %s", type(exc).__name__, exc)


def set_champion(
    session: Session,
    settings: Settings,
    version: str,
    *,
    reason: str,
    action: ChampionAction = ChampionAction.promote,
    previous: str | None = None,
) -> None:
    """Write the DB history (the source of truth) and move the MLflow alias to match.

    Only inside :func:`registry_session`: the row is flushed first, then the alias moves; if
    moving it fails the exception rolls the transaction back, and if the commit fails the
    alias is put back, so the two never disagree for long.
    """
    if not session.info.get(LOCKED):
        raise RuntimeError("set_champion needs the session of registry_session (the lock)")
    session.add(
        ChampionHistory(
            family=settings.family,
            action=str(action),
            version=version,
            previous_version=previous,
            reason=reason,
        )
    )
    # A champion changed by any other path than the arm's own promotion ends the arm.
    _settle_arm(session, settings.family, version, reason)
    session.flush()
    session.info[_ALIAS_MOVED] = True
    mlflow_client(settings).set_registered_model_alias(
        settings.registered_model_name, CHAMPION_ALIAS, version
    )


def promote(engine: Engine, settings: Settings, version: str, *, reason: str) -> ChampionChange:
    """Make ``version`` the champion (no change, and no history row, if it already is)."""
    version = str(version)
    if not version.isdigit():
        raise UnknownVersion(f"unknown version '{version}': versions are numbers (GET /models)")
    if not version_exists(settings, version):
        raise UnknownVersion(
            f"version {version} of {settings.registered_model_name} does not exist"
        )
    with registry_session(engine, settings) as session:
        before = champion(session, settings)
        if before.champion_version == version:
            return ChampionChange(**before.model_dump(), changed=False)
        set_champion(session, settings, version, reason=reason, previous=before.champion_version)
        record_event(
            session,
            settings.family,
            ModelEventKind.promote,
            version=version,
            previous_version=before.champion_version,
            reason=reason,
        )
        return ChampionChange(**champion(session, settings).model_dump(), changed=True)


def rollback(engine: Engine, settings: Settings, *, reason: str) -> ChampionChange:
    """Restore the champion before the current one (raises NothingToRollBack)."""
    with registry_session(engine, settings) as session:
        before = champion(session, settings)
        if before.previous_version is None:
            raise NothingToRollBack(
                "no earlier champion to roll back to"
                + (
                    f" (version {before.champion_version} is the first)"
                    if before.champion_version
                    else ""
                )
            )
        roll_back_to(
            session,
            settings,
            before.previous_version,
            from_version=before.champion_version,
            reason=reason,
        )
        return ChampionChange(**champion(session, settings).model_dump(), changed=True)


def roll_back_to(
    session: Session, settings: Settings, version: str, *, from_version: str | None, reason: str
) -> None:
    """The champion history's rollback step and its audit row, inside
    :func:`registry_session`: by hand (:func:`rollback`) or by the live watch of a new
    champion (``ia_continu.challenge.watch``)."""
    set_champion(
        session,
        settings,
        version,
        reason=reason,
        action=ChampionAction.rollback,
        previous=from_version,
    )
    record_event(
        session,
        settings.family,
        ModelEventKind.rollback,
        version=version,
        previous_version=from_version,
        reason=reason,
    )


def _settle_arm(session: Session, family: str, champion_now: str, reason: str) -> None:
    """A champion changed outside the arm (by hand, a forced retrain, a rollback) ends the
    live challenger: promoted if it is the one made champion, else aborted (it was judged
    against a champion that no longer serves)."""
    arm = session.scalars(
        select(ChallengerArm).where(
            ChallengerArm.family == family, ChallengerArm.status == ArmStatus.active
        )
    ).first()
    if arm is None:
        return
    promoted = arm.version == champion_now
    arm.status = ArmStatus.promoted if promoted else ArmStatus.aborted
    arm.ended_at = utcnow()
    arm.percentage = 0.0
    why = (
        f"made champion outside the live comparison: {reason}"
        if promoted
        else f"the champion changed to {champion_now} outside the live comparison: {reason}"
    )
    arm.last_verdict = {"verdict": "advance" if promoted else "abort", "reason": why[:2000]}
    record_event(
        session,
        family,
        ModelEventKind.challenger_promoted if promoted else ModelEventKind.challenger_aborted,
        version=arm.version,
        previous_version=arm.champion_version,
        reason=why[:2000],
        metrics={"arm_id": arm.id, "mode": arm.mode, "step": arm.step, "outside": True},
    )
