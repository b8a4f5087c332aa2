"""What a model declaration file says, and how it is checked.

A declaration is a TOML file that a user writes instead of Python code::

    name = "bike_traffic"
    task = "regression"                     # binary | multiclass | regression

    [[features]]                            # order = the order of positional requests
    name = "hour"
    type = "integer"                        # number | integer | category | boolean
    min = 0
    max = 23

    [[features]]
    name = "weather"
    type = "category"
    values = ["clear", "cloudy", "rain", "snow"]

    [target]
    name = "count"

    [estimator]
    class = "sklearn.ensemble.RandomForestRegressor"
    params = { n_estimators = 100 }

    [gate]                                  # how a challenger is judged against the champion
    metric = "rmse"                         # the direction follows from the metric

    [fallback]                              # what answers when ML is off or fails
    strategy = "mean"                       # or constant = 3.0, or formula = "hour * 2"

Why TOML: Python reads it with the standard library (``tomllib``, no extra dependency and
no code execution, unlike pickles or YAML tags), its types are unambiguous (``1`` is an
integer, ``1.0`` a float, ``"1"`` text, where YAML turns ``no`` into false and ``1.10`` into
1.1), and it has comments, which JSON does not, so a declaration can explain itself.

Checking happens in two passes, each collecting every problem rather than stopping at the
first: pydantic checks the shape and the types (``strict``: no silent ``"3"`` → 3), then, once
those are right, :func:`semantic_problems` checks what depends on other fields (a metric valid
for the task, classes for classifiers, a formula over declared features, an importable
estimator...). So a file with a type error shows its cross-field problems on the next run.
Each problem names the file, the field path (``features[2].type``) and what is wrong.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ia_continu.config import check_canary_steps
from ia_continu.declared.errors import DeclarationError, Problem
from ia_continu.declared.formula import FUNCTIONS, FormulaError, compile_formula
from ia_continu.declared.imports import ImportRefused, resolve_class
from ia_continu.vocab import Task

TaskName = Literal["binary", "multiclass", "regression"]
FeatureType = Literal["number", "integer", "category", "boolean"]

# Gate metrics per task and whether higher is better. Regression "accuracy" is the share of
# predictions within ``tolerance``, the same figure the prediction log's ``accurate`` gives.
CLASSIFICATION_METRICS = {"accuracy": True, "f1": True, "precision": True, "recall": True}
REGRESSION_METRICS = {"mae": False, "rmse": False, "r2": True, "accuracy": True}
DEFAULT_GATE_METRIC = {"binary": "accuracy", "multiclass": "accuracy", "regression": "rmse"}
DEFAULT_FALLBACK = {"binary": "majority", "multiclass": "majority", "regression": "mean"}

_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
RESERVED_BAND = "low"  # the level below the first declared risk band


class _Strict(BaseModel):
    # strict: TOML already has real types, so "3" for a number is a mistake to report, not to
    # coerce; frozen: a loaded declaration is shared by every request.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Feature(_Strict):
    name: str
    type: FeatureType
    description: str = ""
    min: float | None = None
    max: float | None = None
    values: list[Any] | None = None  # category: the allowed values (ints or texts)
    optional: bool = False
    default: Any = None  # TOML has no null: None means "not given"

    @property
    def numeric_values(self) -> bool:
        """A category whose values are numbers (formulas can read it)."""
        return bool(self.values) and all(type(v) is int for v in self.values or ())


class Target(_Strict):
    name: str
    description: str = ""
    classes: list[Any] | None = None  # classifiers: the labels, in a fixed order
    # Regression: outcomes outside these bounds are refused (a unit or encoding error would
    # otherwise make every monitoring figure meaningless).
    min: float | None = None
    max: float | None = None


class Step(_Strict):
    """A scikit-learn class by import path and its constructor parameters."""

    class_path: str = Field(alias="class")
    params: dict[str, Any] = Field(default_factory=dict)


class Gate(_Strict):
    metric: str
    margin: float = Field(default=0.0, ge=0)
    holdout_fraction: float = Field(default=0.2, gt=0.05, lt=0.5)

    @property
    def higher_is_better(self) -> bool:
        return {**REGRESSION_METRICS, **CLASSIFICATION_METRICS}[self.metric]


class Monitoring(_Strict):
    """Thresholds that make the window "poor" (and may trigger a retrain)."""

    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_mae: float | None = Field(default=None, gt=0)
    max_rmse: float | None = Field(default=None, gt=0)
    min_r2: float | None = Field(default=None, le=1)
    anomaly_error: float | None = Field(default=None, gt=0)  # |error| above this is an anomaly
    drift_share: float = Field(
        default=0.5, gt=0, le=1
    )  # share of drifted features = drifted dataset
    # Concept drift (IA_CONTINU_DEGRADATION_*): this many consecutive windows of this many
    # hours past the retrain limit retrain the model even without input drift.
    degradation_windows: int | None = Field(default=None, ge=1, le=48)
    degradation_window_hours: float | None = Field(default=None, gt=0, le=24 * 7)


REGRESSION_ONLY_MONITORING = ("max_mae", "max_rmse", "min_r2", "anomaly_error")


class Fallback(_Strict):
    """Exactly one of ``constant``, ``strategy`` or ``formula``."""

    constant: Any = None
    strategy: Literal["majority", "mean"] | None = None
    formula: str | None = None
    confidence: float = Field(default=0.5, ge=0, le=1)

    @property
    def kind(self) -> Literal["constant", "strategy", "formula"]:
        if self.formula is not None:
            return "formula"
        if self.strategy is not None:
            return "strategy"
        return "constant"


class Simulator(_Strict):
    name: str
    drift: float = Field(default=0.5, ge=0, le=1)  # how far the world shifts when it drifts


class Challenger(_Strict):
    """How a version that passed the offline gate is judged on live traffic (every field
    unset: the service's IA_CONTINU_CHALLENGER_* / CANARY_STEPS / CHAMPION_* settings)."""

    policy: Literal["direct", "shadow", "canary", "shadow-then-canary"] | None = None
    steps: list[float] | None = Field(default=None, min_length=1)  # canary shares, %
    shadow_rate: float | None = Field(default=None, gt=0, le=1)
    min_labelled: int | None = Field(default=None, ge=10)  # outcomes per arm to decide
    alpha: float | None = Field(default=None, gt=0, lt=0.5)
    min_step_minutes: float | None = Field(default=None, ge=0)
    max_hours: float | None = Field(default=None, gt=0)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_latency_ratio: float | None = Field(default=None, gt=1)
    max_fallback_share: float | None = Field(default=None, ge=0, le=1)
    approval: bool | None = None
    approval_timeout_minutes: float | None = Field(default=None, gt=0)
    watch_hours: float | None = Field(default=None, ge=0)  # after a promotion
    rollback_margin: float | None = Field(default=None, ge=0)

    @field_validator("steps")
    @classmethod
    def _steps(cls, steps: list[float] | None) -> list[float] | None:
        return None if steps is None else list(check_canary_steps(steps))


class Declaration(_Strict):
    name: str
    description: str = ""
    task: TaskName
    features: list[Feature] = Field(min_length=1)
    target: Target
    estimator: Step
    pipeline: list[Step] | None = None  # replaces the automatic preprocessing
    gate: Gate
    monitoring: Monitoring = Field(default_factory=Monitoring)
    challenger: Challenger = Field(default_factory=Challenger)
    tolerance: float | None = Field(default=None, gt=0)
    risk_bands: dict[str, float] | None = None
    fallback: Fallback
    simulator: Simulator | None = None
    ground_truth: str | None = None
    dataset: str | None = None  # e.g. "sklearn:iris": a bundled training set

    _source: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        # The gate metric and the fallback have an obvious default per task; filling them in
        # keeps a first declaration short. Only when the task itself is valid.
        if not isinstance(data, dict) or data.get("task") not in DEFAULT_GATE_METRIC:
            return data
        data = dict(data)
        task = data["task"]
        gate = data.get("gate", {})
        if isinstance(gate, dict) and "metric" not in gate:
            data["gate"] = {**gate, "metric": DEFAULT_GATE_METRIC[task]}
        if "fallback" not in data:
            data["fallback"] = {"strategy": DEFAULT_FALLBACK[task]}
        return data

    # --- derived ------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """The file it was read from ("" when built in code)."""
        return self._source

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Declared order: the order of positional requests and of the model's columns."""
        return tuple(f.name for f in self.features)

    @property
    def is_classifier(self) -> bool:
        return self.task != "regression"

    @property
    def kind(self) -> Task:
        """The service's coarser vocabulary (what the prediction log and monitoring use)."""
        return Task.classification if self.is_classifier else Task.regression

    @property
    def classes(self) -> tuple[Any, ...]:
        return tuple(self.target.classes or ())

    @property
    def higher_is_better(self) -> bool:
        return self.gate.higher_is_better

    def formula_names(self) -> tuple[str, ...]:
        """Features a fallback formula may read: the numeric ones (category values are
        read as their declared numbers, so text categories are out)."""
        return tuple(f.name for f in self.features if f.type != "category" or f.numeric_values)


# --- parsing ---------------------------------------------------------------------------------


def parse_declaration(
    data: Mapping[str, Any],
    *,
    source: str,
    prefixes: tuple[str, ...],
    check_estimator: bool = True,
) -> Declaration:
    """Validate parsed TOML; raise DeclarationError listing every problem found.

    ``check_estimator=False`` skips importing and instantiating the estimator and pipeline
    classes (scikit-learn: ~170 MB and a second of imports): for the declarations shipped
    with the package, which its tests check in full, so that an API process serving only
    built-in models never loads scikit-learn. A user's declaration is always checked."""
    try:
        declaration = Declaration.model_validate(dict(data))
    except ValidationError as exc:
        raise DeclarationError(
            Problem(source, _path(e["loc"]), _message(e)) for e in exc.errors()
        ) from None
    problems = [
        Problem(source, p, m)
        for p, m in semantic_problems(declaration, prefixes, check_estimator=check_estimator)
    ]
    if problems:
        raise DeclarationError(problems)
    declaration._source = source
    return declaration


def _path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_KINDS = {
    "float_type": "a number",
    "int_type": "a whole number",
    "string_type": "text in quotes",
    "bool_type": "true or false",
    "list_type": "a list [...]",
    "dict_type": "a table",
    "model_type": "a table",
}


def _message(error: Mapping[str, Any]) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field (check its spelling)"
    if kind in ("literal_error", "enum"):
        expected = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        return f"{value!r} is not one of {', '.join(expected)}"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, got {_describe(value)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "must be")
    return f"{message} (got {value!r})" if _scalar(value) else message


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | str | bool)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{value!r} (text)"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


# --- semantic checks -------------------------------------------------------------------------


def semantic_problems(
    d: Declaration, prefixes: tuple[str, ...], *, check_estimator: bool = True
) -> list[tuple[str, str]]:
    """Problems that depend on several fields, as (field path, message) pairs."""
    out: list[tuple[str, str]] = []
    if not _SLUG.match(d.name):
        out.append(("name", f"{d.name!r} is not a slug (lower-case letters, digits, _ or -, 1-63)"))
    out += _feature_problems(d)
    out += _target_problems(d)
    if check_estimator:
        out += _estimator_problems(d, prefixes)
    out += _gate_problems(d)
    out += _regression_field_problems(d)
    out += _fallback_problems(d)
    out += _source_problems(d)
    return out


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _label_problems(values: list[Any], path: str, what: str) -> list[tuple[str, str]]:
    """Category values and class labels: ints or texts, one kind, no duplicates."""
    out: list[tuple[str, str]] = []
    for i, v in enumerate(values):
        if not (_is_int(v) or isinstance(v, str)):
            out.append((f"{path}[{i}]", f"{what} must be whole numbers or texts, got {v!r}"))
    if out:
        return out
    if len({type(v) for v in values}) > 1:
        out.append((path, f"mixes numbers and texts: use one kind for all {what}"))
    seen: set[Any] = set()
    for i, v in enumerate(values):
        if v in seen:
            out.append((f"{path}[{i}]", f"{v!r} is listed twice"))
        seen.add(v)
    return out


def _feature_problems(d: Declaration) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    first: dict[str, int] = {}
    for i, f in enumerate(d.features):
        p = f"features[{i}]"
        if not _IDENTIFIER.match(f.name) or keyword.iskeyword(f.name):
            out.append(
                (
                    f"{p}.name",
                    f"{f.name!r} must start with a letter and use only letters, digits and _ "
                    "(formulas refer to features by name)",
                )
            )
        elif f.name in FUNCTIONS:
            out.append((f"{p}.name", f"{f.name!r} is the name of a formula function"))
        if f.name in first:
            out.append(
                (f"{p}.name", f"{f.name!r} is declared twice (also features[{first[f.name]}])")
            )
        first.setdefault(f.name, i)
        out += _feature_domain_problems(f, p)
    return out


def _feature_domain_problems(f: Feature, p: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if f.type in ("number", "integer"):
        if f.values is not None:
            out.append(
                (f"{p}.values", f"only category features list values ({f.type} uses min/max)")
            )
        for bound in ("min", "max"):
            value = getattr(f, bound)
            if value is None:
                continue
            if not math.isfinite(value):
                out.append((f"{p}.{bound}", f"must be a finite number, got {value}"))
            elif f.type == "integer" and not float(value).is_integer():
                out.append((f"{p}.{bound}", f"an integer feature needs a whole bound, got {value}"))
        if f.min is not None and f.max is not None and f.min > f.max:
            out.append((f"{p}.max", f"{f.max:g} is below min {f.min:g}"))
    else:
        for bound in ("min", "max"):
            if getattr(f, bound) is not None:
                out.append((f"{p}.{bound}", f"a {f.type} feature has no bounds"))
    if f.type == "category":
        if not f.values:
            out.append((f"{p}.values", "a category feature must list its allowed values"))
        else:
            out += _label_problems(f.values, f"{p}.values", "category values")
    elif f.type == "boolean" and f.values is not None:
        out.append((f"{p}.values", "a boolean feature's values are true and false"))
    if f.optional and f.default is None:
        out.append((f"{p}.default", "an optional feature needs a default"))
    if f.default is not None:
        if not f.optional:
            out.append((f"{p}.default", "a default is only used with optional = true"))
        elif not out:
            problem = default_problem(f)
            if problem:
                out.append((f"{p}.default", problem))
    return out


def default_problem(f: Feature) -> str | None:
    """Why the declared default would be refused in a request (None when it is fine)."""
    v = f.default
    if f.type == "boolean":
        return None if isinstance(v, bool) else f"must be true or false, got {v!r}"
    if f.type == "category":
        return (
            None
            if v in (f.values or ()) and not isinstance(v, bool)
            else (f"{v!r} is not one of the values {f.values}")
        )
    if not _is_number(v):
        return f"must be a number, got {v!r}"
    if f.type == "integer" and not float(v).is_integer():
        return f"must be a whole number, got {v!r}"
    if f.min is not None and v < f.min:
        return f"{v!r} is below min {f.min:g}"
    if f.max is not None and v > f.max:
        return f"{v!r} is above max {f.max:g}"
    return None


def _target_problems(d: Declaration) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    t = d.target
    if not _IDENTIFIER.match(t.name):
        out.append(("target.name", f"{t.name!r} must start with a letter (letters, digits, _)"))
    if t.name in d.feature_names:
        out.append(("target.name", f"{t.name!r} is also a feature"))
    if d.task == "regression":
        if t.classes is not None:
            out.append(("target.classes", "a regression target has no classes"))
        for bound in ("min", "max"):
            value = getattr(t, bound)
            if value is not None and not math.isfinite(value):
                out.append((f"target.{bound}", f"must be a finite number, got {value}"))
        if t.min is not None and t.max is not None and t.min > t.max:
            out.append(("target.max", f"{t.max:g} is below min {t.min:g}"))
        return out
    for bound in ("min", "max"):
        if getattr(t, bound) is not None:
            out.append((f"target.{bound}", "only a regression target has bounds"))
    if t.classes is None:
        out.append(("target.classes", f"a {d.task} classifier must list its classes"))
        return out
    want = "exactly 2" if d.task == "binary" else "at least 3"
    n = len(t.classes)
    if (d.task == "binary" and n != 2) or (d.task == "multiclass" and n < 3):
        out.append(("target.classes", f"a {d.task} task needs {want} classes, got {n}"))
    out += _label_problems(t.classes, "target.classes", "classes")
    return out


def _estimator_problems(d: Declaration, prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    # Imported here: sklearn is heavy and the schema models above are useful without it.
    from sklearn.base import is_classifier, is_regressor

    from ia_continu.declared.build import instantiate

    out: list[tuple[str, str]] = []
    for i, step in enumerate(d.pipeline or ()):
        out += _step_problems(step, f"pipeline[{i}]", prefixes, "transformer")
    out += _step_problems(d.estimator, "estimator", prefixes, "estimator")
    if any(p.startswith("estimator") for p, _ in out):
        return out
    model = instantiate(d.estimator, prefixes, role="estimator")
    if d.is_classifier and not is_classifier(model):
        out.append(("estimator.class", f"{d.estimator.class_path} is not a classifier ({d.task})"))
    if not d.is_classifier and not is_regressor(model):
        out.append(("estimator.class", f"{d.estimator.class_path} is not a regressor"))
    return out


def _step_problems(
    step: Step, path: str, prefixes: tuple[str, ...], role: Literal["estimator", "transformer"]
) -> list[tuple[str, str]]:
    from ia_continu.declared.build import instantiate

    try:
        resolve_class(step.class_path, prefixes, role)
    except ImportRefused as exc:
        return [(f"{path}.class", str(exc))]
    try:
        obj = instantiate(step, prefixes, role=role)
    except ImportRefused as exc:
        return [(f"{path}.params", str(exc))]
    except TypeError as exc:
        return [(f"{path}.params", f"{step.class_path} refuses these parameters: {exc}")]
    # scikit-learn checks parameter values only in fit(); ask now so that a typo in a value
    # fails at start-up instead of at the first retrain.
    check = getattr(obj, "_validate_params", None)
    if callable(check):
        try:
            check()
        except (TypeError, ValueError) as exc:
            return [(f"{path}.params", str(exc))]
    return []


def _gate_problems(d: Declaration) -> list[tuple[str, str]]:
    metrics = CLASSIFICATION_METRICS if d.is_classifier else REGRESSION_METRICS
    if d.gate.metric not in metrics:
        return [
            (
                "gate.metric",
                f"{d.gate.metric!r} is not a {d.task} metric (one of {', '.join(metrics)})",
            )
        ]
    return []


def _regression_field_problems(d: Declaration) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if d.is_classifier:
        for name in REGRESSION_ONLY_MONITORING:
            if getattr(d.monitoring, name) is not None:
                out.append((f"monitoring.{name}", "only for regression tasks"))
        if d.tolerance is not None:
            out.append(("tolerance", "only for regression (a class is right or wrong)"))
        if d.risk_bands is not None:
            out.append(("risk_bands", "only for regression tasks"))
        return out
    if d.tolerance is None:
        out.append(("tolerance", "is required for regression: |error| < tolerance is accurate"))
    previous: float | None = None
    for name, threshold in (d.risk_bands or {}).items():
        path = f"risk_bands.{name}"
        if not _IDENTIFIER.match(name) or name == RESERVED_BAND:
            out.append((path, f"band names are identifiers other than {RESERVED_BAND!r}"))
        if not math.isfinite(threshold):
            out.append((path, f"must be a finite number, got {threshold}"))
        elif previous is not None and threshold <= previous:
            out.append((path, f"{threshold:g} must be above the previous band ({previous:g})"))
        previous = threshold
    return out


def _fallback_problems(d: Declaration) -> list[tuple[str, str]]:
    fb = d.fallback
    given = [k for k in ("constant", "strategy", "formula") if getattr(fb, k) is not None]
    if len(given) != 1:
        what = " and ".join(given) if given else "none"
        return [("fallback", f"needs exactly one of constant, strategy or formula (got {what})")]
    if fb.constant is not None:
        if d.is_classifier and (isinstance(fb.constant, bool) or fb.constant not in d.classes):
            return [
                (
                    "fallback.constant",
                    f"{fb.constant!r} is not one of the classes {list(d.classes)}",
                )
            ]
        if not d.is_classifier and not _is_number(fb.constant):
            return [("fallback.constant", f"must be a number, got {fb.constant!r}")]
    if fb.strategy is not None:
        want = DEFAULT_FALLBACK[d.task]
        if fb.strategy != want:
            return [("fallback.strategy", f"{fb.strategy!r} is not for {d.task}: use {want!r}")]
    if fb.formula is not None:
        try:
            compile_formula(fb.formula, d.formula_names())
        except FormulaError as exc:
            return [("fallback.formula", f"{fb.formula!r}: {exc}")]
    return []


def _source_problems(d: Declaration) -> list[tuple[str, str]]:
    from ia_continu.declared.data import DATASETS, SIMULATORS

    out: list[tuple[str, str]] = []
    if d.simulator is not None:
        sim = SIMULATORS.get(d.simulator.name)
        if sim is None:
            out.append(
                (
                    "simulator.name",
                    f"{d.simulator.name!r} is not a built-in generator "
                    f"(one of {', '.join(SIMULATORS)})",
                )
            )
        else:
            missing = [n for n in d.feature_names if n not in sim.features]
            if missing:
                out.append(
                    (
                        "simulator.name",
                        f"{sim.name!r} does not generate {', '.join(missing)} "
                        f"(it generates {', '.join(sim.features)})",
                    )
                )
            if d.task not in sim.tasks:
                out.append(("simulator.name", f"{sim.name!r} generates a {sim.tasks[0]} target"))
    if d.ground_truth is not None and not _SLUG.match(d.ground_truth):
        out.append(("ground_truth", f"{d.ground_truth!r} is not a source name (a slug)"))
    if d.dataset is not None:
        scheme, _, name = d.dataset.partition(":")
        spec = DATASETS.get(name) if scheme == "sklearn" else None
        if spec is None:
            known = ", ".join(f"sklearn:{k}" for k in DATASETS)
            out.append(("dataset", f"{d.dataset!r} is not a bundled dataset (one of {known})"))
        else:
            if len(d.features) != spec.n_features:
                out.append(
                    (
                        "dataset",
                        f"{d.dataset} has {spec.n_features} feature columns, "
                        f"mapped by position: declare {spec.n_features}",
                    )
                )
            if d.task not in spec.tasks:
                out.append(("dataset", f"{d.dataset} is a {spec.tasks[0]} dataset"))
            elif d.is_classifier and d.target.classes:
                names, codes = set(spec.target_names), set(range(len(spec.target_names)))
                if set(d.target.classes) not in (names, codes):
                    out.append(
                        (
                            "target.classes",
                            f"{d.dataset}'s classes are {list(spec.target_names)} "
                            f"(or their codes {sorted(codes)})",
                        )
                    )
    return out
