"""Retrain with a quality gate: train, evaluate on a holdout, log to MLflow, register, and
promote only a challenger that does no worse than the champion on the same holdout."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, computed_field
from sqlalchemy import Engine

from ia_continu.challenge import arms
from ia_continu.challenge.policy import ChallengerPolicy
from ia_continu.config import Settings
from ia_continu.errors import UnknownVersion, VersionNeedsFeature
from ia_continu.families import ModelFamily, get_family
from ia_continu.learn import estimators, registry
from ia_continu.learn.datasets import load_dataset
from ia_continu.learn.registry import DECLARATION_TAG
from ia_continu.learn.tracking import tracked_run
from ia_continu.serve import forms
from ia_continu.store.engine import session_scope
from ia_continu.store.locks import exclusive
from ia_continu.vocab import ModelEventKind

log = logging.getLogger(__name__)

DECLARATION_ARTIFACT = "declaration.json"  # a declared model's run artifact


class RetrainResult(BaseModel):
    """What a retrain did: the challenger it registered, the gate's decision, the champion."""

    # challenger: passed the offline gate and is now judged on live traffic (a live policy)
    status: Literal["promoted", "rejected", "challenger"]
    promoted: bool
    reason: str = Field(description="why the gate promoted or rejected the challenger")
    model_version: str = Field(description="the challenger's registered version")
    champion_version: str | None = Field(description="the champion after the gate")
    previous_champion: str | None = Field(
        description="the champion the challenger was judged against"
    )
    training_samples: int
    holdout_samples: int
    generation_id: int = Field(description="the dataset trained on")
    metrics: dict[str, float] = Field(description="the challenger's, on the holdout")
    champion_metrics: dict[str, float] | None = Field(
        description="the champion's, on the same holdout (null without a loadable champion)"
    )
    run_id: str
    run_name: str
    duration_s: float
    timestamp: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accuracy(self) -> float:
        """``metrics["accuracy"]``, kept at the top level for clients of the first API."""
        return self.metrics.get("accuracy", 0.0)


def _split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.random.default_rng(seed).permutation(n)
    cut = max(1, round(n * fraction))
    return idx[cut:], idx[:cut]


def retrain(
    settings: Settings,
    engine: Engine,
    *,
    generation_id: int | None = None,
    force: bool = False,
    reason: str = "manual",
) -> RetrainResult:
    """Train, register, then gate the promotion.

    Two locks: retrains of one registered model run one at a time (the retrain lock, held
    throughout: two at once would only compete for the CPU and register versions in an
    arbitrary order), while the gate and the promotion take the registry lock, shared with
    promote and rollback, only for the seconds they need; a rollback is never kept waiting
    behind minutes of training.
    """
    with exclusive(engine, f"retrain-{settings.registered_model_name}"):
        try:
            return _retrain_locked(settings, engine, generation_id, force, reason)
        except Exception as exc:
            # The champion is untouched; keep a trace of the failure for the audit.
            with session_scope(engine) as session:
                registry.record_event(
                    session,
                    settings.family,
                    ModelEventKind.failed,
                    reason=f"{reason}: {type(exc).__name__}: {exc}",
                )
            raise


def run_name(now: datetime | None = None) -> str:
    """``retrain_YYYYMMDD_HHMMSS_xxxxxx`` (UTC): the random hex suffix keeps two retrains
    started in the same second (two replicas, two families on one store) apart."""
    return f"retrain_{now or datetime.now(UTC):%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"


@dataclass(slots=True)
class _Gate:
    promoted: bool
    why: str
    champion: str | None  # the champion the challenger was judged against
    champion_metrics: dict[str, float] | None
    champion_after: str | None
    challenger: bool = False  # passed the gate, now judged live (not champion yet)


def _champion_metrics(
    settings: Settings,
    family: ModelFamily,
    champion: str | None,
    X_hold: np.ndarray,
    y_hold: np.ndarray,
) -> dict[str, float] | None:
    """The champion judged on the very same holdout rows, or the comparison means nothing."""
    if champion is None:
        return None
    try:
        champ = registry.load_pipeline(settings, champion)
        return family.evaluate(y_hold, family.predict_values(champ, X_hold))
    except (UnknownVersion, VersionNeedsFeature) as exc:
        log.warning("champion %s cannot be loaded, judging the challenger alone: %s", champion, exc)
        return None


def _gate(
    settings: Settings,
    engine: Engine,
    family: ModelFamily,
    *,
    version: str,
    metrics: dict[str, float],
    champion: str | None,
    champion_metrics: dict[str, float] | None,
    X_hold: np.ndarray,
    y_hold: np.ndarray,
    force: bool,
    reason: str,
) -> _Gate:
    """Decide and promote under the registry lock, against the champion *now*."""
    with registry.registry_session(engine, settings) as session:
        current = registry.champion_version(session, family.name)
        if current != champion:
            # Promoted or rolled back while we trained: judge against the one we would replace.
            log.info("champion moved from %s to %s during training", champion, current)
            champion = current
            champion_metrics = (
                None
                if current == version
                else _champion_metrics(settings, family, current, X_hold, y_hold)
            )
        if champion == version:  # promoted by hand before the gate ran
            promoted, why = True, "already champion (promoted while the gate was pending)"
        elif champion_metrics is None:
            promoted, why = True, "no champion yet" if champion is None else "champion unloadable"
        elif force:
            promoted, why = True, "forced"
        else:
            promoted = family.is_better(metrics, champion_metrics, settings.promotion_margin)
            op = ">=" if family.higher_is_better else "<="
            m = family.primary_metric
            why = (
                f"{m} {metrics[m]:.4f} {op} champion {champion_metrics[m]:.4f}"
                f" (margin {settings.promotion_margin})"
            )
            if not promoted:
                why = "not better: " + why
        registry.record_event(
            session,
            family.name,
            ModelEventKind.retrain,
            version=version,
            previous_version=champion,
            reason=reason,
            metrics={"challenger": metrics, "champion": champion_metrics},
        )
        # Passing the offline gate earns a live arm under a live policy (shadow, canary): the
        # challenger becomes champion on what it gets right on live traffic, not on the
        # holdout alone. The first version, a forced retrain or an unloadable champion have
        # nothing live to be compared with: they are promoted at once.
        policy = ChallengerPolicy.of(settings)
        live = promoted and policy.live and champion not in (None, version) and not force
        live = live and champion_metrics is not None
        if live:
            arm = arms.start(
                session, settings, version, champion=champion, reason=why, policy=policy
            )
            why = f"{why}; live as a challenger ({arm.mode}, policy {policy.name})"
            promoted = False
        elif promoted and champion != version:
            registry.set_champion(session, settings, version, reason=why, previous=champion)
        if champion != version and not live:
            registry.record_event(
                session,
                family.name,
                ModelEventKind.promote if promoted else ModelEventKind.reject,
                version=version,
                previous_version=champion,
                reason=why,
                metrics=metrics,
            )
        after = registry.champion_version(session, family.name)
    return _Gate(promoted, why, champion, champion_metrics, after, challenger=live)


def _retrain_locked(
    settings: Settings, engine: Engine, generation_id: int | None, force: bool, reason: str
) -> RetrainResult:
    import sklearn

    started = time.perf_counter()
    family = get_family(settings.family, settings)
    with session_scope(engine) as session:
        data = load_dataset(session, family, generation_id)
        champion = registry.champion_version(session, family.name)
    family.check_trainable(data.y)
    train_idx, hold_idx = _split(len(data.y), settings.holdout_fraction, seed=data.generation_id)
    X_train, y_train, X_hold, y_hold = (
        data.X[train_idx],
        data.y[train_idx],
        data.X[hold_idx],
        data.y[hold_idx],
    )
    family.check_trainable(y_train)

    pipeline = family.build_pipeline().fit(X_train, family.fit_target(y_train))
    pred_hold = family.predict_values(pipeline, X_hold)
    metrics = family.evaluate(y_hold, pred_hold)
    # Declared models convert to ONNX here, checked against scikit-learn on this holdout.
    family.after_fit(pipeline, y_hold, pred_hold, X_hold=X_hold, y_train=y_train)
    # What the version's metric will be on live rows before their outcomes (CBPE, DLE).
    estimator = estimators.fit_or_none(family, pipeline, X_hold, y_hold)
    # Evaluated now, outside the registry lock; re-evaluated under it only if it moved.
    champion_metrics = _champion_metrics(settings, family, champion, X_hold, y_hold)

    name = run_name()
    with tracked_run(settings, name) as run:
        run.log(
            params={
                **family.hyperparameters(),
                "training_samples": len(y_train),
                "holdout_samples": len(y_hold),
                "generation_id": data.generation_id,
                "family": family.name,
                "reason": reason[:250],
            },
            metrics=metrics,
        )
        # The declaration that trained this version (and its ONNX model, when it agreed):
        # a later edit of the file never changes what an older version was.
        for path, content in family.run_artifacts(pipeline).items():
            run.log_bytes(content, path)
            if path == DECLARATION_ARTIFACT:  # which file trained it, at a glance
                run.log(tags={DECLARATION_TAG: hashlib.sha256(content).hexdigest()})
        version = run.log_sklearn_model(
            pipeline,
            registered_model_name=settings.registered_model_name,
            # Explicit requirements: inferring them costs 6-9 s per log.
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"],
            # MLflow 3 saves with skops, which refuses functions it does not know; our
            # feature engineering is our own code, installed with the package.
            skops_trusted_types=family.skops_trusted_types(pipeline) or None,
        )
        # Stored before the gate: a version judged live has its estimator from its first row.
        estimators.keep(engine, run, family.name, version, estimator)
        # And its served form: every API process then loads it without MLflow or sklearn.
        forms.keep(engine, family, version, pipeline, registering=True)
        gate = _gate(
            settings,
            engine,
            family,
            version=version,
            metrics=metrics,
            champion=champion,
            champion_metrics=champion_metrics,
            X_hold=X_hold,
            y_hold=y_hold,
            force=force,
            reason=reason,
        )
        status: Literal["promoted", "rejected", "challenger"] = (
            "promoted" if gate.promoted else "challenger" if gate.challenger else "rejected"
        )
        try:  # annotations only: the decision is committed, a failure here must not undo it
            run.log(
                metrics={f"champion_{k}": v for k, v in (gate.champion_metrics or {}).items()},
                tags={"ia_continu.decision": status, "ia_continu.reason": gate.why},
            )
        except Exception as exc:
            log.warning("run %s not annotated with the gate's decision: %s", name, exc)

    return RetrainResult(
        status=status,
        model_version=version,
        champion_version=gate.champion_after,
        previous_champion=gate.champion,
        promoted=gate.promoted,
        reason=gate.why,
        training_samples=len(y_train),
        holdout_samples=len(y_hold),
        generation_id=data.generation_id,
        metrics=metrics,
        champion_metrics=gate.champion_metrics,
        run_id=run.run_id,
        run_name=name,
        duration_s=round(time.perf_counter() - started, 3),
    )
