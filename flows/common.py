"""What every flow shares: settings, the engine, the failure hook, and the event names."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import Engine

from ia_continu.config import Settings, get_settings
from ia_continu.store.engine import get_engine
from notifications import Alert, Severity, notify

log = logging.getLogger("ia_continu.flows")

# The event that makes the pipeline event-driven: detect_drift emits it, a deployment trigger
# on retrain (deployments/serve.py and prefect.yaml) listens for it.
DRIFT_EVENT = "ia-continu.drift.detected"
PERFORMANCE_EVENT = "ia-continu.performance.degraded"
RETRAIN_EVENT = "ia-continu.retrain.completed"


def model_resource(settings: Settings, version: str | None) -> dict[str, str]:
    """The Prefect event resource of the served model; triggers match on its id."""
    return {
        "prefect.resource.id": f"ia-continu.model.{settings.family.value}",
        "prefect.resource.name": settings.registered_model_name,
        "ia-continu.family": settings.family.value,
        "ia-continu.model_version": str(version or ""),
    }


def settings_and_engine() -> tuple[Settings, Engine]:
    settings = get_settings()
    return settings, get_engine(settings.database_url)


def alert_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_failure`` hook: a failed flow is a critical alert (notify never raises)."""
    notify(
        Alert(
            f"Flow {flow.name} failed",
            str(getattr(state, "message", "") or "no message")[:1500],
            Severity.critical,
            {"flow_run": getattr(flow_run, "name", "?"), "state": getattr(state, "name", "?")},
            key=f"flow-failed-{flow.name}",
        )
    )


def state_key(prefix: str, *parts: str) -> str:
    """A Prefect Variable name for state kept between runs (each run may be a new process,
    so memory cannot carry it). Names allow lowercase letters, digits and underscores."""
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()[:10]
    return f"ia_continu_{prefix}_{digest}"


def swap_state(name: str, value: Any) -> Any:
    """Store ``value`` under ``name``; return what was there (None the first time)."""
    from prefect.variables import Variable

    previous = Variable.get(name, default=None)
    if previous != value:
        Variable.set(name, value, overwrite=True)
    return previous
