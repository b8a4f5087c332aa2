"""detect_drift: Evidently on the champion's training data vs recent inputs; the report kept
and linked; ``ia-continu.drift.detected`` emitted when the dataset drifted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.events import emit_event

from flows.common import DRIFT_EVENT, alert_flow_failure, model_resource, settings_and_engine
from notifications import Alert, Severity, notify


@task(retries=1, retry_delay_seconds=10)
def check(hours: int, max_rows: int, min_rows: int) -> dict[str, Any]:
    from ia_continu.watch.drift import run_drift_check

    settings, engine = settings_and_engine()
    return run_drift_check(
        settings, engine, hours=hours, max_rows=max_rows, min_rows=min_rows
    ).as_dict()


@task
def publish(result: dict[str, Any]) -> None:
    lines = [f"# Drift check: {result['status']}", "", result["reason"], ""]
    if result["status"] == "checked":
        lines += ["| feature | score | method | drifted |", "|---|---|---|---|"]
        for name, score in result["feature_scores"].items():
            lines.append(
                f"| {name} | {score:.4g} | {result['feature_methods'].get(name, '')} |"
                f" {'yes' if name in result['drifted_features'] else 'no'} |"
            )
        lines += [
            "",
            f"Model version {result['model_version']}; reference"
            f" {result['reference_rows']} rows, current {result['current_rows']} rows.",
        ]
        if result["report_path"]:
            uri = Path(result["report_path"]).resolve().as_uri()
            lines += ["", f"HTML report: [{Path(result['report_path']).name}]({uri})"]
            create_link_artifact(
                link=uri, link_text="Evidently drift report", key="ia-continu-drift-report-link"
            )
    create_markdown_artifact(
        markdown="\n".join(lines),
        key="ia-continu-drift",
        description="Latest Evidently drift check",
    )


@flow(name="detect_drift", on_failure=[alert_flow_failure])
def detect_drift(hours: int = 24, max_rows: int = 100_000, min_rows: int = 100) -> dict[str, Any]:
    settings, _ = settings_and_engine()
    result = check(hours, max_rows, min_rows)
    publish(result)
    result["event_id"] = None
    if result["dataset_drift"]:
        event = emit_event(
            event=DRIFT_EVENT,
            resource=model_resource(settings, result["model_version"]),
            payload={
                "share": result["drift_share"],
                "features": result["drifted_features"],
                "model_version": result["model_version"],
                "report_id": result["report_id"],
                "scores": result["feature_scores"],
            },
        )
        result["event_id"] = str(event.id) if event else None
        notify(
            Alert(
                "Data drift detected",
                f"{len(result['drifted_features'])} feature(s) drifted: "
                f"{', '.join(result['drifted_features'])} (share {result['drift_share']:.2f})",
                Severity.warning,
                {"model_version": result["model_version"], "current_rows": result["current_rows"]},
                key=f"drift-{settings.family.value}",
            )
        )
    get_run_logger().info("drift: %s", result["reason"])
    return result


if __name__ == "__main__":
    detect_drift()
