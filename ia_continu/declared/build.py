"""From a declaration to objects: the unfitted scikit-learn Pipeline and the fallback scorer.

The pipeline's input is :mod:`ia_continu.declared.features`' matrix (float64, declared
order, categories as codes). Without declared ``pipeline`` steps the preprocessing follows
the feature types, by column position:

- number and integer → ``StandardScaler`` (harmless for trees, needed by linear models,
  SVMs and neighbours, which is why it is not left to the user);
- category → ``OneHotEncoder`` over the full declared list of codes with
  ``handle_unknown="ignore"`` (dense output: ONNX converters and most estimators want it);
- boolean → passed through (already 0/1).

Declared ``pipeline`` steps replace that block and receive the same matrix (a category then
arrives as its code). Estimator parameters that are themselves estimators are written as a
nested table ``{ class = "...", params = {...} }`` and go through the same import allow-list.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import ValidationError

from ia_continu.declared.features import FeatureEncoder
from ia_continu.declared.formula import Formula, compile_formula
from ia_continu.declared.imports import ImportRefused, Role, normalise_prefixes, resolve_class
from ia_continu.declared.schema import Declaration, Step

if TYPE_CHECKING:  # imported to build a pipeline, not to serve one's served form
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline


def instantiate(step: Step, prefixes: tuple[str, ...], *, role: Role = "estimator") -> Any:
    """An instance of the step's class with its params (nested estimators built too)."""
    cls = resolve_class(step.class_path, prefixes, role)
    return cls(**{k: _param(v, prefixes, k) for k, v in step.params.items()})


def _param(value: Any, prefixes: tuple[str, ...], name: str) -> Any:
    if isinstance(value, dict):
        if "class" not in value or set(value) - {"class", "params"}:
            raise ImportRefused(
                f"parameter {name!r}: a table must be {{ class = ..., params = {{...}} }}"
            )
        try:
            nested = Step.model_validate(value)
        except ValidationError as exc:
            raise ImportRefused(f"parameter {name!r}: {exc.errors()[0]['msg']}") from None
        return instantiate(nested, prefixes, role="component")
    return value


def build_preprocessor(declaration: Declaration) -> ColumnTransformer:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [i for i, f in enumerate(declaration.features) if f.type in ("number", "integer")]
    categorical = [i for i, f in enumerate(declaration.features) if f.type == "category"]
    boolean = [i for i, f in enumerate(declaration.features) if f.type == "boolean"]
    blocks: list[tuple[str, Any, list[int]]] = []
    if numeric:
        blocks.append(("number", StandardScaler(), numeric))
    if categorical:
        codes = [
            np.arange(len(declaration.features[i].values or ()), dtype=np.float64)
            for i in categorical
        ]
        encoder = OneHotEncoder(categories=codes, handle_unknown="ignore", sparse_output=False)
        blocks.append(("category", encoder, categorical))
    if boolean:
        blocks.append(("boolean", "passthrough", boolean))
    return ColumnTransformer(blocks, remainder="drop", sparse_threshold=0.0)


def build_pipeline(declaration: Declaration, extra_prefixes: tuple[str, ...] = ()) -> Pipeline:
    """The unfitted pipeline: preprocessing (automatic or declared) then the estimator."""
    from sklearn.pipeline import Pipeline

    prefixes = normalise_prefixes(extra_prefixes)
    steps: list[tuple[str, Any]]
    if declaration.pipeline is not None:
        steps = [
            (
                f"step{i}_{s.class_path.rpartition('.')[2].lower()}",
                instantiate(s, prefixes, role="transformer"),
            )
            for i, s in enumerate(declaration.pipeline)
        ]
    else:
        steps = [("preprocess", build_preprocessor(declaration))]
    steps.append(("model", instantiate(declaration.estimator, prefixes, role="estimator")))
    return Pipeline(steps)


class FallbackScorer:
    """The declared fallback: ``fit(y)`` on the training targets, then ``predict(X)``.

    - ``constant``: always that value (a class for classifiers);
    - ``strategy``: ``majority`` (the most frequent training class, ties to the first
      declared) or ``mean`` (of the training targets);
    - ``formula``: evaluated on the encoded matrix; for a classifier its value, rounded and
      clipped, is the index of the class in ``target.classes`` (so ``feature1 >= feature2``
      answers the second class when true). A NaN result (0/0) picks the first class.

    Picklable (the compiled formula is rebuilt from its text), so it can be stored next to
    the fitted pipeline.
    """

    def __init__(self, declaration: Declaration) -> None:
        self.declaration = declaration
        self.kind = declaration.fallback.kind
        self.confidence = declaration.fallback.confidence
        self._encoder = FeatureEncoder(declaration)
        self._classes = self._encoder.class_array() if declaration.is_classifier else None
        self._value: Any = None
        if self.kind == "constant":
            self._value = declaration.fallback.constant
        self._formula: Formula | None = None
        if self.kind == "formula":
            self._formula = self._compile()

    def _compile(self) -> Formula:
        return compile_formula(
            self.declaration.fallback.formula or "", self.declaration.formula_names()
        )

    @property
    def fitted(self) -> bool:
        return self.kind != "strategy" or self._value is not None

    def fit(self, y: np.ndarray) -> Self:
        """Learn the majority class or the mean from training targets (no-op otherwise)."""
        if self.kind != "strategy":
            return self
        if len(y) == 0:
            raise ValueError("the fallback needs at least one training target")
        if self.declaration.is_classifier:
            counts = Counter(np.asarray(y).tolist())
            self._value = max(self.declaration.classes, key=lambda c: counts.get(c, 0))
        else:
            self._value = float(np.mean(np.asarray(y, dtype=np.float64)))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        n = len(X)
        if self._formula is not None:
            values = self._formula.evaluate(self._encoder.numeric_columns(X), n)
            if self._classes is None:
                return values
            index = np.clip(np.rint(np.nan_to_num(values, nan=0.0)), 0, len(self._classes) - 1)
            return self._classes[index.astype(np.int64)]
        if self._value is None:
            raise RuntimeError("fit the fallback on the training targets first")
        if self._classes is not None:
            return np.full(n, self._value, dtype=self._classes.dtype)
        return np.full(n, float(self._value))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_formula"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.kind == "formula":
            self._formula = self._compile()


def risk_levels(declaration: Declaration, predictions: np.ndarray) -> np.ndarray | None:
    """Each prediction's band: the highest declared band whose threshold it reaches, else
    ``"low"``; None when the declaration has no bands."""
    if not declaration.risk_bands:
        return None
    levels = np.full(len(predictions), "low", dtype=object)
    for name, threshold in sorted(declaration.risk_bands.items(), key=lambda kv: kv[1]):
        levels[predictions >= threshold] = name
    return levels


def accurate(declaration: Declaration, predictions: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Is each prediction right once the outcome is known (regression: within tolerance)?"""
    if declaration.is_classifier:
        return np.asarray(predictions == actual)
    return np.abs(np.asarray(predictions, float) - np.asarray(actual, float)) < float(
        declaration.tolerance or 0.0
    )
