"""What every flow shares: the run's settings and engine, the model a run works on, the
failure hook, the model's event resource, state kept between runs, and plain values for a
flow's result.

Models: every flow works on one model, named by its ``model`` parameter (None: the default
model, ``IA_CONTINU_FAMILY``), through ``model_view`` (the settings view of
``ia_continu.catalog.model_settings``: ``family`` is the model's name, its declared thresholds
replace the global ones). Scheduled deployments run a fan-out flow (``for_each_model``) that
runs the per-model flow once per model, as a subflow each: by default every declared model
that has a champion, so declaring a new model needs no new deployment. A failing model does
not stop the others; the fan-out fails at the end, naming them.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from ia_continu.catalog import catalog, model_settings
from ia_continu.config import Settings
from ia_continu.store.engine import make_engine, session_scope
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


def model_view(model: str | None) -> Settings:
    """This run's settings for ``model`` (None: the default model); UnknownModel for a name
    no declaration gives, before anything runs."""
    return model_settings(Settings(), model)


def models_with_champion(settings: Settings) -> list[str]:
    """Every declared model that has a champion, by name: what the scheduled flows watch."""
    from ia_continu.learn import registry

    with run_engine(settings) as engine, session_scope(engine) as session:
        return [
            name
            for name in catalog(settings).names
            if registry.champion_version(session, name) is not None
        ]


class ModelsFailed(RuntimeError):
    """A fan-out run in which some models' runs failed (the others completed)."""


def for_each_model(
    models: list[str] | None, run: Callable[[str], Any], *, default: list[str] | None = None
) -> dict[str, Any]:
    """``run(model)`` for each model (a subflow call with ``return_state=True``), every one of
    them even when one fails; the results by model. ``models`` None: ``default``, else every
    declared model with a champion. Raises ModelsFailed naming the failed models at the end,
    so the run shows failed (and ``alert_flow_failure`` alerts) without hiding the others."""
    from prefect import get_run_logger

    names = models if models is not None else default
    if names is None:
        names = models_with_champion(Settings())
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for name in names:
        state = run(name)
        if state.is_completed():
            results[name] = state.result()
        else:
            failed[name] = str(state.message or state.name)[:500]
            results[name] = {"failed": failed[name]}
    get_run_logger().info("models: %s; failed: %s", sorted(results), sorted(failed))
    if failed:
        raise ModelsFailed(
            "; ".join(f"model {name}: {message}" for name, message in failed.items())
        )
    return results


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
    # A per-model run names its model (a parameter), so the alert says which model failed.
    model = (getattr(flow_run, "parameters", None) or {}).get("model")
    on = f" (model {model})" if model else ""
    notify(
        Alert(
            f"Flow {flow.name} failed{on}",
            str(getattr(state, "message", "") or "no message")[:1500],
            Severity.critical,
            {"flow_run": getattr(flow_run, "name", "?"), "state": getattr(state, "name", "?")},
            key=f"flow-failed-{flow.name}-{model or ''}",
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


def artifact_key(base: str, model: str) -> str:
    """One Prefect artifact key per model (keys allow lowercase letters, digits and dashes);
    the classification model keeps the key it always had."""
    if model == "classification":
        return base
    return f"{base}-" + "".join(c if c.isalnum() else "-" for c in model.lower())


def plain(value: Any) -> Any:
    """A flow's typed result as JSON-like data (what the Prefect UI shows best)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic
    return dump(mode="json") if dump is not None else value
