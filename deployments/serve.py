"""Serve every deployment of prefect.yaml from this process: schedules and triggers, no pool.

``ia-continu run`` starts this with PREFECT_API_URL pointing at the local Prefect server.
prefect.yaml is the declaration (``prefect deploy --all`` + a worker reads the same file in
docker-compose); this module only turns each entry into a served deployment, so the two ways
of running the loop cannot drift apart. One deliberate difference: the health-check interval
comes from ``IA_CONTINU_HEALTH_CHECK_INTERVAL_SECONDS`` when served (its default is the
yaml's 60 s), so a local run can watch the API more or less often without editing the yaml.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from deployments.spec import DeclaredDeployment, declared_deployments
from ia_continu.config import Settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.events import DeploymentTriggerTypes
    from prefect.schedules import Schedule

# Interval schedules a setting overrides at serve time, by deployment name.
INTERVAL_SETTINGS: dict[str, Callable[[Settings], float]] = {
    "health-check": lambda settings: settings.health_check_interval_seconds,
}


def load_flow(declared: DeclaredDeployment) -> Flow[..., Any]:
    """The flow an entrypoint names, imported as a module (not re-executed from its path)."""
    from prefect import Flow

    flow = getattr(importlib.import_module(declared.module), declared.function)
    if not isinstance(flow, Flow):
        raise TypeError(f"{declared.entrypoint} is not a Prefect flow")
    return flow


def to_schedule(spec: dict[str, Any]) -> Schedule:
    """A prefect.yaml schedule entry (``interval`` in seconds, or ``cron``) as Prefect's type."""
    from prefect.schedules import Cron, Interval

    options = dict(spec)
    if "cron" in options:
        return Cron(options.pop("cron"), **options)
    if "interval" in options:
        return Interval(options.pop("interval"), **options)
    raise ValueError(f"prefect.yaml schedule {spec!r}: only interval and cron are served")


def to_trigger(spec: dict[str, Any]) -> DeploymentTriggerTypes:
    """A prefect.yaml trigger, validated by the type `prefect deploy` uses."""
    from prefect.events import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    trigger: DeploymentTriggerTypes = TypeAdapter(DeploymentTriggerTypes).validate_python(spec)
    return trigger


def schedules_for(declared: DeclaredDeployment, settings: Settings) -> list[Schedule]:
    schedules = [to_schedule(s) for s in declared.schedules]
    override = INTERVAL_SETTINGS.get(declared.name)
    if override is None:
        return schedules
    interval = timedelta(seconds=override(settings))
    return [
        dataclasses.replace(s, interval=interval) if s.interval is not None else s
        for s in schedules
    ]


def to_deployment(declared: DeclaredDeployment, settings: Settings) -> RunnerDeployment:
    """The served twin of one declared deployment."""
    from prefect.deployments.runner import RunnerDeployment

    deployment = load_flow(declared).to_deployment(
        name=declared.name,
        tags=declared.tags,
        schedules=schedules_for(declared, settings),
        triggers=[to_trigger(t) for t in declared.triggers],
        parameters=declared.parameters,
        description=declared.description,
    )
    if not isinstance(deployment, RunnerDeployment):  # an awaitable, from an event loop
        raise TypeError("build the served deployments outside of an event loop")
    return deployment


def build_deployments(
    settings: Settings, declared: list[DeclaredDeployment] | None = None
) -> list[RunnerDeployment]:
    """The served twin of every deployment prefect.yaml declares."""
    return [
        to_deployment(d, settings)
        for d in (declared_deployments() if declared is None else declared)
    ]


def main(argv: list[str] | None = None) -> None:
    """``python -m deployments.serve [deployment-name ...]``: all of them by default."""
    from prefect import serve

    only = set(sys.argv[1:] if argv is None else argv)
    deployments = [d for d in build_deployments(Settings()) if not only or d.name in only]
    # pause_on_shutdown=False: a Ctrl-C must not leave the schedules paused for next time.
    serve(*deployments, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
