"""detect_drift: Evidently on the champion's training data vs recent inputs; the report kept
and linked; ``LoopEvent.drift_detected`` emitted when the dataset drifted (the retrain
deployment's trigger listens for it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from sqlalchemy import Engine

from flows.common import alert_flow_failure, model_resource, plain, run_engine
from ia_continu.config import Settings
from ia_continu.vocab import LoopEvent
from notifications import Alert, Severity, notify

if TYPE_CHECKING:
    from ia_continu.watch.drift import DriftResult


@task(retries=1, retry_delay_seconds=10, cache_policy=NO_CACHE)
def check(
    settings: Settings, engine: Engine, hours: int, max_rows: int, min_rows: int
) -> DriftResult:
    # Evidently is imported when the check runs, not when this module is.
    from ia_continu.watch.drift import RecentInputs, run_drift_check

    return run_drift_check(settings, engine, RecentInputs(hours, max_rows, min_rows))


def report_markdown(result: DriftResult) -> str:
    lines = [f"# Drift check: {result.status}", "", result.reason, ""]
    if result.status == "checked":
        lines += ["| feature | score | method | drifted |", "|---|---|---|---|"]
        for name, score in result.feature_scores.items():
            lines.append(
                f"| {name} | {score:.4g} | {result.feature_methods.get(name, '')} |"
                f" {'yes' if name in result.drifted_features else 'no'} |"
            )
        lines += [
            "",
            f"Model version {result.model_version}; reference"
            f" {result.reference_rows} rows, current {result.current_rows} rows.",
        ]
        if result.report_path:
            uri = Path(result.report_path).resolve().as_uri()
            lines += ["", f"HTML report: [{Path(result.report_path).name}]({uri})"]
    return "\n".join(lines)


@task
def publish(result: DriftResult) -> None:
    if result.status == "checked" and result.report_path:
        create_link_artifact(
            link=Path(result.report_path).resolve().as_uri(),
            link_text="Evidently drift report",
            key="ia-continu-drift-report-link",
        )
    create_markdown_artifact(
        markdown=report_markdown(result),
        key="ia-continu-drift",
        description="Latest Evidently drift check",
    )


def announce(settings: Settings, result: DriftResult) -> str | None:
    """The drift event (what starts the retrain) and the alert; the event's id."""
    event = emit_event(
        event=LoopEvent.drift_detected,
        resource=model_resource(settings, result.model_version),
        payload={
            "share": result.drift_share,
            "features": result.drifted_features,
            "model_version": result.model_version,
            "report_id": result.report_id,
            "scores": result.feature_scores,
        },
    )
    notify(
        Alert(
            "Data drift detected",
            f"{len(result.drifted_features)} feature(s) drifted: "
            f"{', '.join(result.drifted_features)} (share {result.drift_share:.2f})",
            Severity.warning,
            {"model_version": result.model_version, "current_rows": result.current_rows},
            key=f"drift-{settings.family}",
        ),
        settings,
    )
    return str(event.id) if event else None


@flow(name="detect_drift", on_failure=[alert_flow_failure])
def detect_drift(hours: int = 24, max_rows: int = 100_000, min_rows: int = 100) -> dict[str, Any]:
    settings = Settings()
    with run_engine(settings) as engine:
        result = check(settings, engine, hours, max_rows, min_rows)
    publish(result)
    event_id = announce(settings, result) if result.dataset_drift else None
    get_run_logger().info("drift: %s", result.reason)
    return {**plain(result), "event_id": event_id}


if __name__ == "__main__":
    detect_drift()
