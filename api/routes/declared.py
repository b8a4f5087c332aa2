"""``GET /models/declared``: the model declarations this process read and checked at start.

The built-in declarations plus the ``*.toml`` files of ``IA_CONTINU_MODELS_DIR``: every one
is served under ``/models/{name}/...``; ``served`` marks the default model, the one the first
API's paths (``/predict``, ``/retrain``...) answer for.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import RuntimeDep
from ia_continu.declared import Declaration
from ia_continu.declared.schema import FeatureType, Step, TaskName

router = APIRouter(prefix="/models", tags=["models"])

Label = int | str  # a class label or a category value, as declared


class DeclaredFeature(BaseModel):
    name: str
    type: FeatureType
    description: str
    min: float | None = Field(description="numbers and integers: lowest accepted value")
    max: float | None = Field(description="numbers and integers: highest accepted value")
    values: list[Label] | None = Field(description="categories: the accepted values")
    optional: bool
    default: bool | int | float | str | None = Field(
        description="used when an optional one is absent"
    )


class DeclaredTarget(BaseModel):
    name: str
    description: str
    classes: list[Label] | None = Field(description="classifiers: the labels, in order")
    min: float | None = Field(description="regression: lowest accepted outcome")
    max: float | None = Field(description="regression: highest accepted outcome")


class DeclaredStep(BaseModel):
    """A scikit-learn compatible class by import path, with its constructor parameters."""

    model_config = ConfigDict(populate_by_name=True)

    class_path: str = Field(alias="class")
    params: dict[str, Any]


class DeclaredGate(BaseModel):
    """How a challenger is judged against the champion on the holdout."""

    metric: str
    direction: Literal["higher", "lower"] = Field(description="which way the metric is better")
    margin: float = Field(description="how much worse than the champion a challenger may be")
    holdout_fraction: float


class DeclaredFallback(BaseModel):
    """What answers when ML is off or fails."""

    kind: Literal["constant", "strategy", "formula"]
    value: bool | int | float | str = Field(description="the constant, strategy or formula")
    confidence: float


class DeclaredSimulator(BaseModel):
    name: str
    drift: float


class DeclaredModelPublic(BaseModel):
    name: str
    description: str
    source: str = Field(description="the declaration file")
    builtin: bool = Field(description="shipped with ia-continu (not from IA_CONTINU_MODELS_DIR)")
    served: bool = Field(
        description="the default model (IA_CONTINU_FAMILY): /predict, /retrain... without a name"
    )
    task: TaskName
    features: list[DeclaredFeature] = Field(description="in declared order")
    target: DeclaredTarget
    pipeline: list[DeclaredStep] | None = Field(description="replaces automatic preprocessing")
    estimator: DeclaredStep
    gate: DeclaredGate
    fallback: DeclaredFallback
    tolerance: float | None = Field(description="regression: |error| below this is accurate")
    simulator: DeclaredSimulator | None
    dataset: str | None
    ground_truth: str | None


def _step(step: Step) -> DeclaredStep:
    return DeclaredStep(class_path=step.class_path, params=dict(step.params))


def public(declaration: Declaration, *, builtin: bool, served: bool) -> DeclaredModelPublic:
    d = declaration
    fallback = d.fallback
    value = {
        "constant": fallback.constant,
        "strategy": fallback.strategy,
        "formula": fallback.formula,
    }[fallback.kind]
    return DeclaredModelPublic(
        name=d.name,
        description=d.description,
        source=d.source,
        builtin=builtin,
        served=served,
        task=d.task,
        features=[
            DeclaredFeature(
                name=f.name,
                type=f.type,
                description=f.description,
                min=f.min,
                max=f.max,
                values=f.values,
                optional=f.optional,
                default=f.default,
            )
            for f in d.features
        ],
        target=DeclaredTarget(
            name=d.target.name,
            description=d.target.description,
            classes=d.target.classes,
            min=d.target.min,
            max=d.target.max,
        ),
        pipeline=[_step(s) for s in d.pipeline] if d.pipeline is not None else None,
        estimator=_step(d.estimator),
        gate=DeclaredGate(
            metric=d.gate.metric,
            direction="higher" if d.higher_is_better else "lower",
            margin=d.gate.margin,
            holdout_fraction=d.gate.holdout_fraction,
        ),
        fallback=DeclaredFallback(kind=fallback.kind, value=value, confidence=fallback.confidence),
        tolerance=d.tolerance,
        simulator=(
            DeclaredSimulator(name=d.simulator.name, drift=d.simulator.drift)
            if d.simulator is not None
            else None
        ),
        dataset=d.dataset,
        ground_truth=d.ground_truth,
    )


@router.get("/declared", response_model=list[DeclaredModelPublic])
def list_declared(runtime: RuntimeDep) -> list[DeclaredModelPublic]:
    """Built-ins first, then the user folder's files by file name."""
    declared, default = runtime.declared, runtime.settings.family
    return [
        public(d, builtin=name in declared.builtin, served=name == default)
        for name, d in declared.declarations.items()
    ]
