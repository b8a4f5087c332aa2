"""detect_drift: Evidently on one model's champion's training data vs its recent inputs, and
on the model's outputs (its predictions, the known outcomes); the report kept and linked;
``LoopEvent.drift_detected`` emitted about that model when the dataset (the inputs) drifted
(the retrain deployment's trigger listens for it and passes the model on). Drifted outputs
alert on their own, without that event: a model whose answers moved on unchanged inputs is
a question for the sustained-degradation rule, which judges them against the outcomes.
``detect_drift_every_model`` (the daily deployment) runs it for every model with a champion
(flows/common.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
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
        lines += ["", "| output | drifted | score | method | rows |", "|---|---|---|---|---|"]
        for what, output in (("predictions", result.prediction), ("outcomes", result.target)):
            verdict = {None: "not judged", True: "yes", False: "no"}[output.drifted]
            shown = "" if output.score is None else f"{output.score:.4g}"
            lines.append(
                f"| {what} | {verdict} | {shown} | {output.method or ''} | {output.rows} |"
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
def publish(model: str, result: DriftResult) -> None:
    if result.status == "checked" and result.report_path:
        create_link_artifact(
            link=Path(result.report_path).resolve().as_uri(),
            link_text=f"Evidently drift report ({model})",
            key=artifact_key("ia-continu-drift-report-link", model),
        )
    create_markdown_artifact(
        markdown=report_markdown(result),
        key=artifact_key("ia-continu-drift", model),
        description=f"Latest Evidently drift check of {model}",
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
            "prediction_drift": result.prediction.drifted,
            "target_drift": result.target.drifted,
        },
    )
    notify(
        Alert(
            f"Data drift detected ({settings.family})",
            f"{len(result.drifted_features)} feature(s) drifted: "
            f"{', '.join(result.drifted_features)} (share {result.drift_share:.2f})",
            Severity.warning,
            {
                "model": settings.family,
                "model_version": result.model_version,
                "current_rows": result.current_rows,
            },
            key=f"drift-{settings.family}",
        ),
        settings,
    )
    return str(event.id) if event else None


def output_alert(settings: Settings, result: DriftResult) -> Alert:
    """Drifted predictions or outcomes: reported apart from the inputs (they do not start a
    retrain by themselves)."""
    what = [
        f"{name} drifted ({output.method}: {output.score:.3g}, {output.rows} rows)"
        for name, output in (("predictions", result.prediction), ("outcomes", result.target))
        if output.drifted and output.score is not None
    ]
    inputs = "inputs drifted too" if result.dataset_drift else "inputs stable"
    return Alert(
        f"Prediction drift detected ({settings.family})",
        f"{'; '.join(what)}; {inputs}",
        Severity.warning,
        {"model": settings.family, "model_version": result.model_version},
        key=f"output-drift-{settings.family}",
    )


@flow(name="detect_drift", on_failure=[alert_flow_failure])
def detect_drift(
    hours: int = 24, max_rows: int = 100_000, min_rows: int = 100, model: str | None = None
) -> dict[str, Any]:
    """Check ``model``'s inputs (None: the default model)."""
    settings = model_view(model)
    with run_engine(settings) as engine:
        result = check(settings, engine, hours, max_rows, min_rows)
    publish(settings.family, result)
    event_id = announce(settings, result) if result.dataset_drift else None
    if result.output_drift:
        notify(output_alert(settings, result), settings)
    get_run_logger().info("drift: %s", result.reason)
    return {**plain(result), "event_id": event_id}


@flow(name="detect_drift_every_model", on_failure=[alert_flow_failure])
def detect_drift_every_model(
    models: list[str] | None = None, hours: int = 24, max_rows: int = 100_000, min_rows: int = 100
) -> dict[str, Any]:
    """detect_drift for each model (None: every declared model with a champion)."""
    return for_each_model(
        models,
        lambda name: detect_drift(hours, max_rows, min_rows, model=name, return_state=True),
    )


if __name__ == "__main__":
    detect_drift()
