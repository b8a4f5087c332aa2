"""What every flow shares: the run's settings and engine, the failure hook, the model's event
resource, state kept between runs, and plain values for a flow's result.

One way to configure: a flow builds ``Settings()`` once per run (from IA_CONTINU_* variables,
as a worker's fresh process sees them) and one engine from it (``run_engine``), and hands both
to its tasks as parameters. Tasks taking an engine are declared ``cache_policy=NO_CACHE``:
Prefect's default policy hashes every input to build a cache key, and an engine (a pool of
connections) cannot be hashed; these tasks read and write the live database, so a cached
answer would be wrong anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from ia_continu.config import Settings
from ia_continu.store.engine import make_engine
from notifications import Alert, Severity, notify

# The resource of the events flows emit about the served model. The retrain trigger in
# prefect.yaml matches on its id ("ia-continu.model.*").
MODEL_RESOURCE_ID = "ia-continu.model.{family}"


@contextmanager
def run_engine(settings: Settings) -> Iterator[Engine]:
    """One engine (one pool) for a flow run, closed when the run ends."""
    engine = make_engine(settings.database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def model_resource(settings: Settings, version: str | None) -> dict[str, str]:
    """The Prefect event resource of the served model; triggers match on its id."""
    return {
        "prefect.resource.id": MODEL_RESOURCE_ID.format(family=settings.family),
        "prefect.resource.name": settings.registered_model_name,
        "ia-continu.family": settings.family,
        "ia-continu.model_version": str(version or ""),
    }


def alert_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_failure`` hook: a failed flow is a critical alert (notify never raises)."""
    try:
        settings: Settings | None = Settings()
    except Exception:  # the failure may be the configuration itself: the alert is only logged
        settings = None
    notify(
        Alert(
            f"Flow {flow.name} failed",
            str(getattr(state, "message", "") or "no message")[:1500],
            Severity.critical,
            {"flow_run": getattr(flow_run, "name", "?"), "state": getattr(state, "name", "?")},
            key=f"flow-failed-{flow.name}",
        ),
        settings,
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


def plain(value: Any) -> Any:
    """A flow's typed result as JSON-like data (what the Prefect UI shows best)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic
    return dump(mode="json") if dump is not None else value
