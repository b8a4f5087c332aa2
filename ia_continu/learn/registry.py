"""Model registry: MLflow keeps runs, artifacts and versions; the DB keeps who is champion.

MLflow aliases only know the present, so the champion's history (for rollback) lives in the
``champion_history`` table and the ``champion`` alias is kept in step for the MLflow UI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ia_continu.config import Settings
from ia_continu.errors import NothingToRollBack, UnknownVersion
from ia_continu.store.locks import exclusive, try_exclusive
from ia_continu.store.tables import ChampionHistory, ModelEvent

log = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
_LOCKED = "ia_continu.registry_lock"  # session.info keys
_ALIAS_MOVED = "ia_continu.alias_moved"

# MLflow otherwise tries DNS look-ups for telemetry while logging.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass(frozen=True, slots=True)
class ChampionState:
    version: str | None
    previous: str | None  # what a rollback would restore
    stack: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChampionChange:
    before: ChampionState
    after: ChampionState

    @property
    def changed(self) -> bool:
        return self.after != self.before


def mlflow_client(settings: Settings):
    """A client on our store; also points MLflow's fluent API (log_model) at it."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    return MlflowClient(
        tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri
    )


def ensure_experiment(settings: Settings) -> str:
    """The experiment's id, created the first time. On a tracking server (``http(s)://``) the
    server's default artifact root applies (with ``--serve-artifacts``, ``mlflow-artifacts:/``:
    artifacts go through the server over HTTP, no disk shared with it); on the embedded store,
    the local folder ``mlflow_artifacts_dir``."""
    import mlflow

    client = mlflow_client(settings)
    exp = client.get_experiment_by_name(settings.mlflow_experiment)
    if exp is not None:
        return exp.experiment_id
    artifact_root = None
    if not settings.mlflow_tracking_uri.lower().startswith(("http://", "https://")):
        Path(settings.mlflow_artifacts_dir).mkdir(parents=True, exist_ok=True)
        artifact_root = Path(settings.mlflow_artifacts_dir).resolve().as_uri()
    try:
        return client.create_experiment(settings.mlflow_experiment, artifact_location=artifact_root)
    except mlflow.exceptions.MlflowException:  # created by a concurrent process meanwhile
        return client.get_experiment_by_name(settings.mlflow_experiment).experiment_id


def load_pipeline(settings: Settings, version: str) -> Any:
    """Load one registered version's scikit-learn pipeline (raises UnknownVersion)."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    mlflow_client(settings)
    try:
        return mlflow.sklearn.load_model(f"models:/{settings.registered_model_name}/{version}")
    except MlflowException as exc:
        raise UnknownVersion(f"model version {version} cannot be loaded: {exc.message}") from exc


def version_exists(settings: Settings, version: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client(settings).get_model_version(settings.registered_model_name, str(version))
        return True
    except MlflowException:
        return False


def list_versions(settings: Settings) -> list[dict[str, Any]]:
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
            {
                "version": str(mv.version),
                "aliases": sorted(aliases.get(str(mv.version), [])),
                "run_id": mv.run_id,
                "run_name": run.info.run_name if run else None,
                "created_at": datetime.fromtimestamp(mv.creation_timestamp / 1000).isoformat(),
                "metrics": dict(run.data.metrics) if run else {},
                "params": dict(run.data.params) if run else {},
            }
        )
    return out


# --- champion (DB) -------------------------------------------------------------------------


def champion_state(session: Session, family: str) -> ChampionState:
    """Replay the history as a stack: promote pushes, rollback pops."""
    stack: list[str] = []
    rows = session.execute(
        select(ChampionHistory.action, ChampionHistory.version)
        .where(ChampionHistory.family == family)
        .order_by(ChampionHistory.id)
    ).all()
    for action, version in rows:
        if action == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != version:
            stack.append(version)
    return ChampionState(
        version=stack[-1] if stack else None,
        previous=stack[-2] if len(stack) > 1 else None,
        stack=tuple(stack),
    )


def champion_version(session: Session, family: str) -> str | None:
    return champion_state(session, family).version


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


def champion_history(session: Session, family: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ChampionHistory)
        .where(ChampionHistory.family == family)
        .order_by(ChampionHistory.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "action": r.action,
            "version": r.version,
            "previous_version": r.previous_version,
            "reason": r.reason,
            "at": r.created_at.isoformat(),
        }
        for r in rows
    ]


def record_event(
    session: Session,
    family: str,
    event: str,
    *,
    version: str | None = None,
    previous_version: str | None = None,
    reason: str = "",
    metrics: dict[str, Any] | None = None,
) -> ModelEvent:
    row = ModelEvent(
        family=family,
        event=event,
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
        session.info[_LOCKED] = True
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
        want = champion_version(session, settings.family.value)
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
    action: str = "promote",
    previous: str | None = None,
) -> None:
    """Write the DB history (the source of truth) and move the MLflow alias to match.

    Only inside :func:`registry_session`: the row is flushed first, then the alias moves; if
    moving it fails the exception rolls the transaction back, and if the commit fails the
    alias is put back, so the two never disagree for long.
    """
    if not session.info.get(_LOCKED):
        raise RuntimeError("set_champion needs the session of registry_session (the lock)")
    session.add(
        ChampionHistory(
            family=settings.family.value,
            action=action,
            version=version,
            previous_version=previous,
            reason=reason,
        )
    )
    session.flush()
    session.info[_ALIAS_MOVED] = True
    mlflow_client(settings).set_registered_model_alias(
        settings.registered_model_name, CHAMPION_ALIAS, version
    )


def promote(engine: Engine, settings: Settings, version: str, *, reason: str) -> ChampionChange:
    """Make ``version`` the champion (no change, and no history row, if it already is)."""
    family = settings.family.value
    version = str(version)
    if not version_exists(settings, version):
        raise UnknownVersion(
            f"version {version} of {settings.registered_model_name} does not exist"
        )
    with registry_session(engine, settings) as session:
        before = champion_state(session, family)
        if before.version == version:
            return ChampionChange(before, before)
        set_champion(session, settings, version, reason=reason, previous=before.version)
        record_event(
            session,
            family,
            "promote",
            version=version,
            previous_version=before.version,
            reason=reason,
        )
        return ChampionChange(before, champion_state(session, family))


def rollback(engine: Engine, settings: Settings, *, reason: str) -> ChampionChange:
    """Restore the champion before the current one (raises NothingToRollBack)."""
    family = settings.family.value
    with registry_session(engine, settings) as session:
        before = champion_state(session, family)
        if before.previous is None:
            raise NothingToRollBack(
                "no earlier champion to roll back to"
                + (f" (version {before.version} is the first)" if before.version else "")
            )
        set_champion(
            session,
            settings,
            before.previous,
            reason=reason,
            action="rollback",
            previous=before.version,
        )
        record_event(
            session,
            family,
            "rollback",
            version=before.previous,
            previous_version=before.version,
            reason=reason,
        )
        return ChampionChange(before, champion_state(session, family))
