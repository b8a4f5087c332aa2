"""Retrain with a quality gate: train, evaluate on a holdout, log to MLflow, register, and
promote only a challenger that does no worse than the champion on the same holdout."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine

from ia_continu import registry
from ia_continu.config import Settings
from ia_continu.datasets import load_dataset
from ia_continu.db import session_scope
from ia_continu.families import get_family
from ia_continu.locks import exclusive

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RetrainResult:
    status: str  # promoted, rejected, registered (force=False never leaves it at that)
    model_version: str
    champion_version: str | None
    previous_champion: str | None
    promoted: bool
    reason: str
    training_samples: int
    holdout_samples: int
    generation_id: int
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    run_id: str
    run_name: str
    duration_s: float
    timestamp: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """Serialized across processes: two retrains never interleave their gate and promotion."""
    with exclusive(engine, f"retrain-{settings.family.value}"):
        try:
            return _retrain_locked(settings, engine, generation_id, force, reason)
        except Exception as exc:
            # The champion is untouched; keep a trace of the failure for the audit.
            with session_scope(engine) as session:
                registry.record_event(
                    session,
                    settings.family.value,
                    "failed",
                    reason=f"{reason}: {type(exc).__name__}: {exc}",
                )
            raise


def _retrain_locked(
    settings: Settings, engine: Engine, generation_id: int | None, force: bool, reason: str
) -> RetrainResult:
    import mlflow
    import mlflow.sklearn
    import sklearn

    started = time.perf_counter()
    family = get_family(settings.family)
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

    pipeline = family.build_pipeline().fit(X_train, y_train)
    pred_hold = family.predict_values(pipeline, X_hold)
    metrics = family.evaluate(y_hold, pred_hold)
    if family.task == "regression":
        pipeline.residual_std_ = float(np.std(y_hold - pred_hold))

    # The champion is judged on the very same holdout rows, or the comparison means nothing.
    champion_metrics = None
    if champion is not None:
        try:
            champ = registry.load_pipeline(settings, champion)
            champion_metrics = family.evaluate(y_hold, family.predict_values(champ, X_hold))
        except registry.UnknownVersion as exc:
            log.warning(
                "champion %s cannot be loaded, judging the challenger alone: %s", champion, exc
            )

    experiment_id = registry.ensure_experiment(settings)
    run_name = f"retrain_{datetime.now(UTC):%Y%m%d_%H%M%S}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(
            {
                **family.hyperparameters(),
                "training_samples": len(y_train),
                "holdout_samples": len(y_hold),
                "generation_id": data.generation_id,
                "family": family.name,
                "reason": reason[:250],
            }
        )
        mlflow.log_metrics(metrics)
        if champion_metrics:
            mlflow.log_metrics({f"champion_{k}": v for k, v in champion_metrics.items()})
        # Explicit requirements: inferring them costs 6-9 s per log (../shared/STACK.md).
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=settings.registered_model_name,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"],
            # MLflow 3 saves with skops, which refuses functions it does not know; our
            # feature engineering is our own code, installed with the package.
            skops_trusted_types=list(family.trusted_types) or None,
        )
        version = str(info.registered_model_version)

        if champion_metrics is None:
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
        mlflow.set_tags(
            {
                "ia_continu.decision": "promoted" if promoted else "rejected",
                "ia_continu.reason": why,
            }
        )

    with session_scope(engine) as session:
        registry.record_event(
            session,
            family.name,
            "retrain",
            version=version,
            previous_version=champion,
            reason=reason,
            metrics={"challenger": metrics, "champion": champion_metrics},
        )
        if promoted:
            registry.set_champion(session, settings, version, reason=why, previous=champion)
            registry.record_event(
                session,
                family.name,
                "promote",
                version=version,
                previous_version=champion,
                reason=why,
                metrics=metrics,
            )
        else:
            registry.record_event(
                session,
                family.name,
                "reject",
                version=version,
                previous_version=champion,
                reason=why,
                metrics=metrics,
            )
        state = registry.champion_state(session, family.name)

    return RetrainResult(
        status="promoted" if promoted else "rejected",
        model_version=version,
        champion_version=state.version,
        previous_champion=champion,
        promoted=promoted,
        reason=why,
        training_samples=len(y_train),
        holdout_samples=len(y_hold),
        generation_id=data.generation_id,
        metrics=metrics,
        champion_metrics=champion_metrics,
        run_id=run.info.run_id,
        run_name=run_name,
        duration_s=round(time.perf_counter() - started, 3),
    )
