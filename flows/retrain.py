"""retrain: decide whether to retrain one model, retrain it with the quality gate, then alert.

Started by the ``LoopEvent.drift_detected`` and ``LoopEvent.degradation_sustained`` events
(the ``retrain`` deployment's triggers, which pass the event's model as the ``model``
parameter) and weekly for every model with a champion (``retrain_every_model``, the
``retrain-weekly`` deployment). It reads the latest drift row, the recent metrics and the
champion's recent windows, decides (``ia_continu.decide``: retrain when the inputs drifted AND
the model got worse, or when the model stayed below its limit over every recent window),
trains on recent labelled predictions when there are enough (the world as it is now), and lets
``ia_continu.learn.training.retrain``'s gate promote or reject; that function writes the audit
rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from sqlalchemy import Engine

from flows.common import (
    alert_flow_failure,
    artifact_key,
    for_each_model,
    model_resource,
    model_view,
    plain,
    run_engine,
)
from ia_continu import decide
from ia_continu.config import Settings
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.truth import sources
from ia_continu.vocab import LoopEvent, ModelEventKind
from ia_continu.watch.drift import latest_report
from notifications import Alert, Severity, notify

if TYPE_CHECKING:
    from ia_continu.learn.training import RetrainResult
    from ia_continu.watch.quality import WindowMetrics


@dataclass(frozen=True, slots=True)
class LoopState:
    """What the decision reads: the recent window's metrics, the latest drift verdict and
    the champion's recent windows (the sustained-degradation path)."""

    metrics: WindowMetrics
    drift: bool  # the latest drift check, if recent enough, found the dataset drifted
    windows: list[decide.WindowFigures]


@task(cache_policy=NO_CACHE)
def current_state(
    settings: Settings, engine: Engine, metrics_hours: int, drift_max_age_hours: int
) -> LoopState:
    from ia_continu.watch.degradation import recent_windows
    from ia_continu.watch.quality import window_metrics

    report = latest_report(engine, settings.family, max_age_hours=drift_max_age_hours)
    family = get_family(settings.family, settings)
    with session_scope(engine) as session:
        metrics = window_metrics(session, family, metrics_hours)
        version = registry.champion_version(session, settings.family)
        windows = recent_windows(session, settings, family, version)
    return LoopState(metrics, drift=bool(report and report.dataset_drift), windows=windows)


@task(cache_policy=NO_CACHE)
def training_data(settings: Settings, engine: Engine, hours: int, min_rows: int) -> int | None:
    """A dataset of recent labelled predictions; None when too few (the latest dataset then)."""
    with session_scope(engine) as session:
        return sources.snapshot_labelled(
            session, get_family(settings.family, settings), hours=hours, min_rows=min_rows
        )


@task(cache_policy=NO_CACHE)
def run_retrain(
    settings: Settings, engine: Engine, generation_id: int | None, reason: str
) -> RetrainResult:
    from ia_continu.learn.training import retrain

    return retrain(settings, engine, generation_id=generation_id, reason=reason)


@task(cache_policy=NO_CACHE)
def record_skip(
    settings: Settings, engine: Engine, verdict: decide.RetrainDecision, reason: str
) -> None:
    # A decision not to retrain is also audited: "why did nothing happen?" has an answer.
    with session_scope(engine) as session:
        registry.record_event(
            session,
            settings.family,
            ModelEventKind.retrain_skipped,
            reason=f"{reason}: {verdict.reason}"[:2000],
            metrics=_jsonable(verdict.checks),
        )


def _jsonable(checks: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for k, v in checks.items()
    }


def announce(
    settings: Settings, reason: str, verdict: decide.RetrainDecision, result: RetrainResult
) -> None:
    """The alert, the event and the artifact of a retrain that ran."""
    notify(
        Alert(
            f"Retrain: version {result.model_version} {result.status} ({settings.family})",
            f"{verdict.reason}. Gate: {result.reason}",
            Severity.info if result.promoted else Severity.warning,
            {
                "model": settings.family,
                "champion": result.champion_version,
                "previous": result.previous_champion,
                "trigger": reason[:200],
                "training_samples": result.training_samples,
                **{k: round(v, 4) for k, v in result.metrics.items()},
            },
            key=f"retrain-{settings.family}-{result.model_version}",
        ),
        settings,
    )
    emit_event(
        event=LoopEvent.retrain_completed,
        resource=model_resource(settings, result.champion_version),
        payload={"status": result.status, "version": result.model_version, "reason": result.reason},
    )
    create_markdown_artifact(
        key=artifact_key("ia-continu-retrain", settings.family),
        markdown=(
            f"# Retrain of {settings.family}: {result.status}\n\n- trigger: {reason}\n- decision: "
            f"{verdict.reason}\n- gate: {result.reason}\n- champion now: "
            f"{result.champion_version} (was {result.previous_champion})\n"
            f"- trained on generation {result.generation_id}"
            f" ({result.training_samples} rows)\n"
        ),
    )


@flow(name="retrain", on_failure=[alert_flow_failure])
def retrain_flow(
    reason: str = "weekly schedule",
    force_decision: bool = False,
    metrics_hours: int = 24,
    drift_max_age_hours: int = 48,
    min_labelled_rows: int = 200,
    model: str | None = None,
) -> dict[str, Any]:
    """Decide on and maybe retrain ``model`` (None: the default model)."""
    settings = model_view(model)
    with run_engine(settings) as engine:
        state = current_state(settings, engine, metrics_hours, drift_max_age_hours)
        verdict = decide.decide_retrain(
            drift=state.drift,
            metrics=state.metrics,
            settings=settings,
            rules=get_family(settings.family, settings).rules,
            force=force_decision,
            windows=state.windows,
        )
        get_run_logger().info(
            "decision: %s (%s)", "retrain" if verdict.retrain else "skip", verdict.reason
        )
        if not verdict.retrain:
            record_skip(settings, engine, verdict, reason)
            return {"decision": plain(verdict), "result": None}
        generation_id = training_data(settings, engine, metrics_hours, min_labelled_rows)
        result = run_retrain(settings, engine, generation_id, f"{reason} | {verdict.reason}"[:250])
    announce(settings, reason, verdict, result)
    return {"decision": plain(verdict), "result": plain(result)}


@flow(name="retrain_every_model", on_failure=[alert_flow_failure])
def retrain_every_model(
    models: list[str] | None = None,
    reason: str = "weekly schedule",
    metrics_hours: int = 24,
    drift_max_age_hours: int = 48,
    min_labelled_rows: int = 200,
) -> dict[str, Any]:
    """retrain_flow for each model (None: every declared model with a champion); each one
    still decides for itself whether to retrain."""
    return for_each_model(
        models,
        lambda name: retrain_flow(
            reason,
            metrics_hours=metrics_hours,
            drift_max_age_hours=drift_max_age_hours,
            min_labelled_rows=min_labelled_rows,
            model=name,
            return_state=True,
        ),
    )


if __name__ == "__main__":
    retrain_flow()
