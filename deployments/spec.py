"""prefect.yaml read as data: the one declaration of the loop's deployments.

``prefect deploy --all`` reads the file for a worker (docker-compose); ``deployments/serve.py``
builds the deployments it serves from it (``ia-continu run``); ``ia-continu run`` waits for the
deployment and trigger names it declares. Only PyYAML here, no Prefect: the CLI imports this
module without loading the Prefect stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PREFECT_YAML = Path(__file__).resolve().parents[1] / "prefect.yaml"

# Keys of a deployment that serve.py turns into its served deployment.
SERVED_KEYS = frozenset(
    {"name", "entrypoint", "tags", "schedules", "triggers", "parameters", "description"}
)
# Keys that only matter to `prefect deploy` and a worker: serving runs flows in-process.
WORKER_KEYS = frozenset({"work_pool", "pull", "build", "push"})


@dataclass(frozen=True, slots=True)
class DeclaredDeployment:
    """One entry of prefect.yaml's ``deployments``."""

    name: str
    entrypoint: str  # "flows/retrain.py:retrain_flow"
    tags: list[str] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    description: str | None = None

    @property
    def module(self) -> str:
        """The entrypoint's file as a module name: ``flows.retrain``."""
        path = self.entrypoint.split(":", 1)[0]
        return path.removesuffix(".py").replace("/", ".")

    @property
    def function(self) -> str:
        return self.entrypoint.split(":", 1)[1]

    @property
    def trigger_names(self) -> list[str]:
        return [t["name"] for t in self.triggers]


def _declared(raw: dict[str, Any]) -> DeclaredDeployment:
    name = raw.get("name")
    unknown = set(raw) - SERVED_KEYS - WORKER_KEYS
    if unknown:
        # A key serve.py would silently drop makes the two ways of running the loop differ.
        raise ValueError(
            f"prefect.yaml deployment {name!r}: {sorted(unknown)} not handled by "
            "deployments/serve.py (add it there, or to WORKER_KEYS if only a worker needs it)"
        )
    if not name or ":" not in str(raw.get("entrypoint", "")):
        raise ValueError(f"prefect.yaml deployment {raw!r} needs a name and a path:function")
    triggers = [dict(t) for t in raw.get("triggers") or []]
    for i, trigger in enumerate(triggers, start=1):
        # The name `prefect deploy` gives an unnamed trigger.
        trigger.setdefault("name", f"{name}__automation_{i}")
    return DeclaredDeployment(
        name=name,
        entrypoint=raw["entrypoint"],
        tags=list(raw.get("tags") or []),
        schedules=[dict(s) for s in raw.get("schedules") or []],
        triggers=triggers,
        parameters=dict(raw.get("parameters") or {}),
        description=raw.get("description"),
    )


def declared_deployments(path: Path = PREFECT_YAML) -> list[DeclaredDeployment]:
    """Every deployment prefect.yaml declares, in its order."""
    spec = yaml.safe_load(path.read_text()) or {}
    return [_declared(raw) for raw in spec.get("deployments") or []]
