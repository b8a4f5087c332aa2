"""Contributing factors of a declared model's answer: which declared features weighed most.

Given where they are cheap, read from the fitted pipeline's own numbers (never by running
scikit-learn, so the ONNX hot path stays a few microseconds away from what it was):

- a **linear** estimator (``coef_``) behind the automatic preprocessing: per row, each
  declared feature's contribution to the decision value, ``coef x scaled value`` (a number's
  ``(x - mean) / scale``, a boolean's 0/1), a category's one-hot columns summed back to it
  (which is the coefficient of the value the row has). A classifier's contributions are
  towards the predicted class (for two classes, towards the second one, as ``coef_`` has a
  single row); the top 3 by absolute value, per row;
- a **tree ensemble** (``feature_importances_``): the fitted importances summed per declared
  feature, the top 3. They are *global*, the same for every row: how much the model relies
  on a feature overall, not why it answered this row;
- anything else (declared ``pipeline`` steps, whose columns cannot be traced back to the
  features, or an estimator with neither attribute): no factors.

Vectorised over the batch: a 1-row answer costs tens of microseconds more, a full batch a
few microseconds a row (the dicts the log keeps).

The fitted numbers are read once into plain arrays and JSON (:func:`explainer_parts`), and
the explainer is built from those (:func:`explainer_from_parts`): a version's served form
keeps them, so a replica explains without scikit-learn, with the very code the pipeline's
own explainer runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

TOP = 3
DIGITS = 4

# (the rows' encoded matrix, their predictions) -> one {feature: contribution} per row
Explainer = Callable[[np.ndarray, np.ndarray], list[dict[str, float]]]


def compile_explainer(pipeline: Any, names: Sequence[str], top: int = TOP) -> Explainer | None:
    """The ``top`` factors of ``pipeline`` (fitted on a matrix whose columns are ``names``),
    or None where they are not cheap or not defined (see the module docstring)."""
    parts = explainer_parts(pipeline, len(names))
    return None if parts is None else explainer_from_parts(*parts, names, top)


def explainer_parts(
    pipeline: Any, n_columns: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The fitted numbers the factors need, as arrays and JSON-safe values (a served form
    keeps them), or None where there are no cheap factors."""
    from sklearn.compose import ColumnTransformer  # training or MLflow loading: sklearn is here

    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer):
        return None  # declared preprocessing: its output columns are not traceable
    preprocess, model = steps[0][1], steps[1][1]
    blocks = _blocks(preprocess)
    if blocks is None:
        return None
    # Checked here, once: a factor that failed at answer time would fail the answer.
    width = sum(sum(b.widths()) for b in blocks)
    if any(c >= n_columns for b in blocks for c in b.columns):
        return None
    arrays: dict[str, np.ndarray] = {}
    for i, block in enumerate(blocks):
        arrays[f"mean{i}"] = np.asarray(block.mean, dtype=np.float64)
        arrays[f"scale{i}"] = np.asarray(block.scale, dtype=np.float64)
    meta: dict[str, Any] = {
        "blocks": [
            {
                "kind": b.kind,
                "columns": b.columns,
                "start": b.start,
                "categories": [c.tolist() for c in b.categories],
            }
            for b in blocks
        ]
    }
    coef = getattr(model, "coef_", None)
    if coef is not None:
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        if coef.shape[1] != width:
            return None
        arrays["coef"] = coef
        classes = getattr(model, "classes_", None)
        if classes is not None:
            arrays["classes"] = np.asarray(classes, dtype=np.float64)
        return arrays, {**meta, "kind": "linear"}
    importances = getattr(model, "feature_importances_", None)
    if importances is not None and len(importances) == width:
        arrays["importances"] = np.asarray(importances, dtype=np.float64)
        return arrays, {**meta, "kind": "global"}
    return None


def explainer_from_parts(
    arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], names: Sequence[str], top: int = TOP
) -> Explainer:
    """The explainer of :func:`explainer_parts`' output, for a matrix whose columns are
    ``names``."""
    blocks = [
        _Block.of(b, arrays[f"mean{i}"], arrays[f"scale{i}"]) for i, b in enumerate(meta["blocks"])
    ]
    if meta["kind"] == "linear":
        return _linear(arrays.get("classes"), arrays["coef"], blocks, list(names), top)
    return _global(np.asarray(arrays["importances"]), blocks, list(names), top)


class _Block:
    """One fitted block of the automatic preprocessing: which input columns it reads, where
    its output columns start, and how it turns a value into them."""

    def __init__(self, kind: str, columns: list[int], start: int, transformer: Any) -> None:
        self.kind, self.columns, self.start = kind, columns, start
        self.mean: Any = 0.0
        self.scale: Any = 1.0
        self.categories: list[np.ndarray] = []
        if transformer is None:
            return  # rebuilt from its parts (``of``)
        if kind == "number":  # what StandardScaler.transform does: (x - mean) / scale
            if transformer.with_mean:
                self.mean = np.asarray(transformer.mean_, dtype=np.float64)
            if transformer.with_std:
                self.scale = np.asarray(transformer.scale_, dtype=np.float64)
        elif kind == "category":
            self.categories = [np.asarray(c, dtype=np.float64) for c in transformer.categories_]

    @classmethod
    def of(cls, part: Mapping[str, Any], mean: np.ndarray, scale: np.ndarray) -> _Block:
        block = cls(str(part["kind"]), [int(c) for c in part["columns"]], int(part["start"]), None)
        # A 0-d array is the scalar default (0.0, 1.0): the same arithmetic, bit for bit.
        block.mean = float(mean) if mean.ndim == 0 else mean
        block.scale = float(scale) if scale.ndim == 0 else scale
        block.categories = [np.asarray(c, dtype=np.float64) for c in part["categories"]]
        return block

    def widths(self) -> list[int]:
        """How many output columns each input column has."""
        if self.kind == "category":
            return [len(c) for c in self.categories]
        return [1] * len(self.columns)


def _blocks(preprocess: Any) -> list[_Block] | None:
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    blocks = []
    for name, transformer, columns in preprocess.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        start = preprocess.output_indices_[name].start
        cols = [int(c) for c in columns]
        if isinstance(transformer, StandardScaler):
            blocks.append(_Block("number", cols, start, transformer))
        elif isinstance(transformer, OneHotEncoder) and transformer.drop is None:
            blocks.append(_Block("category", cols, start, transformer))
        elif transformer == "passthrough" or (
            isinstance(transformer, FunctionTransformer) and transformer.func is None
        ):
            blocks.append(_Block("boolean", cols, start, transformer))
        else:
            return None
    return blocks


def _top(names: np.ndarray, contributions: np.ndarray, k: int) -> list[dict[str, float]]:
    if len(contributions) == 1:
        # One row (a /predict answer): plain Python on a handful of floats is ~10x quicker
        # than numpy's per-call overhead.
        values = contributions[0].tolist()
        order = sorted(range(len(values)), key=lambda i: -abs(values[i]))[:k]
        return [{names[i]: round(values[i], DIGITS) for i in order if values[i] != 0.0}]
    # A batch: picked and rounded in numpy (per-row numpy scalars would cost ~10 µs a row).
    top = np.argsort(-np.abs(contributions), axis=1)[:, :k]
    values = np.take_along_axis(contributions, top, axis=1).round(DIGITS).tolist()
    return [
        {k: v for k, v in zip(ks, vs, strict=True) if v != 0.0}
        for ks, vs in zip(names[top].tolist(), values, strict=True)
    ]


def _linear(
    classes: np.ndarray | None, coef: np.ndarray, blocks: list[_Block], names: list[str], top: int
) -> Explainer:
    per_class = coef.shape[0] > 1 and classes is not None and len(classes) == coef.shape[0]
    fitted = np.asarray(classes, dtype=np.float64) if per_class else None
    labels = np.asarray(names, dtype=object)

    def explain(X: np.ndarray, prediction: np.ndarray) -> list[dict[str, float]]:
        n = len(X)
        if fitted is not None:  # the coefficients of each row's predicted class
            rows = coef[np.minimum(np.searchsorted(fitted, prediction), len(fitted) - 1)]
        else:
            rows = np.broadcast_to(coef[0], (n, coef.shape[1]))
        out = np.zeros((n, len(names)))
        for block in blocks:
            cols = block.columns
            if block.kind == "number":
                scaled = (X[:, cols] - block.mean) / block.scale
                out[:, cols] = scaled * rows[:, block.start : block.start + len(cols)]
            elif block.kind == "boolean":
                out[:, cols] = X[:, cols] * rows[:, block.start : block.start + len(cols)]
            else:  # one-hot: the coefficient of the value each row has (0 if unknown)
                start = block.start
                for col, values in zip(cols, block.categories, strict=True):
                    pos = np.minimum(np.searchsorted(values, X[:, col]), len(values) - 1)
                    known = values[pos] == X[:, col]
                    out[:, col] = np.where(known, rows[np.arange(n), start + pos], 0.0)
                    start += len(values)
        return _top(labels, out, top)

    return explain


def _global(importances: np.ndarray, blocks: list[_Block], names: list[str], top: int) -> Explainer:
    per_feature = np.zeros(len(names))
    for block in blocks:
        start = block.start
        for col, width in zip(block.columns, block.widths(), strict=True):
            per_feature[col] += importances[start : start + width].sum()
            start += width
    (factors,) = _top(np.asarray(names, dtype=object), per_feature[None, :], top)

    def explain(X: np.ndarray, prediction: np.ndarray) -> list[dict[str, float]]:
        return [factors] * len(X)  # global: the same (read-only) mapping for every row

    return explain
