"""Serve every flow from this process: schedules and the drift-event trigger, no work pool.

``ia-continu run`` starts this with PREFECT_API_URL pointing at the local Prefect server.
The same deployments are declared in ``prefect.yaml`` for ``prefect deploy`` + a worker
(docker-compose).
"""

from __future__ import annotations

from datetime import timedelta

from prefect import serve
from prefect.events import DeploymentEventTrigger

from flows.backfill_actuals import backfill_actuals
from flows.common import DRIFT_EVENT
from flows.detect_drift import detect_drift
from flows.health_check import health_check
from flows.monitor_performance import monitor_performance
from flows.retrain import retrain_flow
from ia_continu.config import get_settings

# Shared with prefect.yaml (tests/flows/test_deployments.py checks they agree).
RETRAIN_TRIGGER_PARAMETERS = {
    "reason": "drift event: features {{ event.payload.features }} "
    "(share {{ event.payload.share }}) on model {{ event.payload.model_version }}",
}


def drift_trigger() -> DeploymentEventTrigger:
    return DeploymentEventTrigger(
        name="retrain-on-drift",
        expect={DRIFT_EVENT},
        match={"prefect.resource.id": "ia-continu.model.*"},
        parameters=RETRAIN_TRIGGER_PARAMETERS,
    )


def build_deployments():
    settings = get_settings()
    return [
        health_check.to_deployment(
            name="health-check",
            interval=timedelta(seconds=settings.health_check_interval_seconds),
            tags=["ia-continu", "monitoring"],
        ),
        backfill_actuals.to_deployment(
            name="backfill-actuals", cron="5 * * * *", tags=["ia-continu", "data"]
        ),
        monitor_performance.to_deployment(
            name="monitor-performance", cron="15 * * * *", tags=["ia-continu", "monitoring"]
        ),
        detect_drift.to_deployment(
            name="detect-drift", cron="30 2 * * *", tags=["ia-continu", "monitoring"]
        ),
        retrain_flow.to_deployment(
            name="retrain",
            cron="0 3 * * 1",
            triggers=[drift_trigger()],
            tags=["ia-continu", "training"],
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    """``python -m deployments.serve [deployment-name ...]``: all of them by default."""
    import sys

    only = set(sys.argv[1:] if argv is None else argv)
    deployments = [d for d in build_deployments() if not only or d.name in only]
    # pause_on_shutdown=False: a Ctrl-C must not leave the schedules paused for next time.
    serve(*deployments, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
