"""retrain: seed 002's decision, then the retrain with its quality gate, then the alert.

Started by the ``ia-continu.drift.detected`` event (a deployment trigger) and weekly. It reads
the latest drift row and the recent metrics, decides (ia_continu.decide), trains on recent
labelled predictions when there are enough (the world as it is now), and lets
ia_continu.learn.training.retrain's gate promote or reject; that function writes the audit rows.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from flows.common import RETRAIN_EVENT, alert_flow_failure, model_resource, settings_and_engine
from ia_continu import decide
from ia_continu.families import get_family
from ia_continu.learn import registry
from ia_continu.store.engine import session_scope
from ia_continu.truth import sources
from ia_continu.watch.drift import latest_report
from notifications import Alert, Severity, notify


@task
def current_state(metrics_hours: int, drift_max_age_hours: int) -> dict[str, Any]:
    from ia_continu.watch.quality import window_metrics

    settings, engine = settings_and_engine()
    report = latest_report(engine, settings.family.value, max_age_hours=drift_max_age_hours)
    with session_scope(engine) as session:
        metrics = window_metrics(session, settings.family.value, metrics_hours)
    return {
        "metrics": metrics,
        "drift": bool(report and report.dataset_drift),
        "drift_report_id": report.id if report else None,
        "drift_features": list(report.drifted_features) if report else [],
    }


@task
def training_data(hours: int, min_rows: int) -> int | None:
    settings, engine = settings_and_engine()
    with session_scope(engine) as session:
        return sources.snapshot_labelled(
            session, get_family(settings.family), hours=hours, min_rows=min_rows
        )


@task
def run_retrain(generation_id: int | None, reason: str) -> dict[str, Any]:
    from ia_continu.learn.training import retrain

    settings, engine = settings_and_engine()
    return retrain(settings, engine, generation_id=generation_id, reason=reason).as_dict()


@task
def record_skip(verdict: decide.RetrainDecision, reason: str) -> None:
    # A decision not to retrain is also audited: "why did nothing happen?" has an answer.
    settings, engine = settings_and_engine()
    with session_scope(engine) as session:
        registry.record_event(
            session,
            settings.family.value,
            "retrain_skipped",
            reason=f"{reason}: {verdict.reason}"[:2000],
            metrics=_jsonable(verdict.checks),
        )


def _jsonable(checks: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
        for k, v in checks.items()
    }


@flow(name="retrain", on_failure=[alert_flow_failure])
def retrain_flow(
    reason: str = "weekly schedule",
    force_decision: bool = False,
    metrics_hours: int = 24,
    drift_max_age_hours: int = 48,
    min_labelled_rows: int = 200,
) -> dict[str, Any]:
    settings, _ = settings_and_engine()
    task_kind = get_family(settings.family).task
    state = current_state(metrics_hours, drift_max_age_hours)
    verdict = decide.decide_retrain(
        drift=state["drift"],
        metrics=state["metrics"],
        settings=settings,
        task=task_kind,
        force=force_decision,
    )
    log = get_run_logger()
    log.info("decision: %s (%s)", "retrain" if verdict.retrain else "skip", verdict.reason)
    outcome: dict[str, Any] = {"decision": verdict.as_dict(), "result": None}
    if not verdict.retrain:
        record_skip(verdict, reason)
        return outcome

    generation_id = training_data(metrics_hours, min_labelled_rows)
    result = run_retrain(generation_id, f"{reason} | {verdict.reason}"[:250])
    outcome["result"] = result
    promoted = result["promoted"]
    notify(
        Alert(
            f"Retrain: version {result['model_version']} {result['status']}",
            f"{verdict.reason}. Gate: {result['reason']}",
            Severity.info if promoted else Severity.warning,
            {
                "champion": result["champion_version"],
                "previous": result["previous_champion"],
                "trigger": reason[:200],
                "training_samples": result["training_samples"],
                **{k: round(v, 4) for k, v in result["metrics"].items()},
            },
            key=f"retrain-{result['model_version']}",
        )
    )
    emit_event(
        event=RETRAIN_EVENT,
        resource=model_resource(settings, result["champion_version"]),
        payload={
            "status": result["status"],
            "version": result["model_version"],
            "reason": result["reason"],
        },
    )
    create_markdown_artifact(
        key="ia-continu-retrain",
        markdown=(
            f"# Retrain: {result['status']}\n\n- trigger: {reason}\n- decision: "
            f"{verdict.reason}\n- gate: {result['reason']}\n- champion now: "
            f"{result['champion_version']} (was {result['previous_champion']})\n"
            f"- trained on generation {result['generation_id']}"
            f" ({result['training_samples']} rows)\n"
        ),
    )
    return outcome


if __name__ == "__main__":
    retrain_flow()
