"""Score a fitted declared pipeline through ONNX Runtime when, and only when, it agrees.

scikit-learn's ``predict`` validates its input and walks Python code per estimator: one row
through a 100-tree forest costs milliseconds, where ONNX Runtime answers in microseconds
(``bench/onnx_scoring.py`` measures both). So :func:`to_onnx` converts the fitted pipeline
with skl2onnx, runs it on rows the caller provides (a holdout), and returns an ONNX scorer
only if its answers match scikit-learn's; otherwise a scikit-learn scorer and the reason.
Either way the caller gets the same interface and a :class:`OnnxReport` to log.

Input spec: one tensor ``X`` of ``double[N, n_features]``. The features layer already turns
every declared type into a float column (categories as codes, booleans as 0/1), so mixed
numeric and categorical declarations need no per-column inputs or string tensors, and the
whole pipeline (scaler, one-hot, estimator) runs inside the ONNX graph.

Precision: two conversions are tried, in order.

1. ``float64`` end to end: linear models then agree with scikit-learn to ~1e-14.
2. ``float32 into the estimator``: a ``CastTransformer`` is put in front of the estimator.
   ONNX tree ensembles compute in float32 (a double tree fails to load in onnxruntime), and
   feeding them a float32 *preprocessing* output is wrong: a scaled value a few ulps away
   from scikit-learn's flips a threshold comparison (measured: 190 of 500 rows off by up
   to 3.1 for a scaled random forest). Scaling in double and casting just before the trees
   is exactly what scikit-learn does (trees cast their input to float32).

Agreement: classifiers need probabilities within ``tolerance`` (absolute) and the same label
wherever scikit-learn's top two probabilities are further apart than that (a tie may break
either way in float32); regressors need ``max |sklearn - onnx| <= tolerance * max(1,
max |sklearn|)``: relative for large outputs, because float32 forests summing 100 leaves of
counts in the hundreds differ around 1e-4 absolutely (measured 1.8e-4 on values near 300).

Sessions use one intra-op and one inter-op thread: the service scales with processes and
concurrent requests, and a thread pool per request would only contend with them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported where a pipeline is converted or run, not to
    # serve the ONNX bytes (a replica serving a version's served form has none of it)
    from sklearn.pipeline import Pipeline

INPUT_NAME = "X"
DEFAULT_TOLERANCE = 1e-4
FLOAT64 = "float64"
FLOAT32_ESTIMATOR = "float32 into the estimator"


class Scorer(Protocol):
    """What the serving path needs, whoever computes it."""

    engine: str  # "onnxruntime" or "sklearn"
    classes: np.ndarray | None  # classifiers: column order of predict_proba

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None: ...


class SklearnScorer:
    """The fitted pipeline itself: always correct, slower per call."""

    engine = "sklearn"

    def __init__(self, pipeline: Pipeline) -> None:
        from sklearn.base import is_classifier

        self.pipeline = pipeline
        self.classes = np.asarray(pipeline.classes_) if is_classifier(pipeline) else None
        self._has_proba = self.classes is not None and hasattr(pipeline, "predict_proba")

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self.pipeline.predict(X)
        return out if self.classes is not None else np.asarray(out, dtype=np.float64).ravel()

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        return np.asarray(self.pipeline.predict_proba(X)) if self._has_proba else None


class OnnxScorer:
    """An ONNX Runtime session over the converted pipeline; picklable (keeps the bytes)."""

    engine = "onnxruntime"

    def __init__(self, model: bytes, *, classes: np.ndarray | None, has_proba: bool) -> None:
        self.model = model
        self.classes = classes
        self.has_proba = has_proba
        self._session = _session(model)

    def run(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, probabilities or None) from one session run."""
        outputs = self._session.run(None, {INPUT_NAME: np.ascontiguousarray(X, dtype=np.float64)})
        if self.classes is None:
            return np.asarray(outputs[0], dtype=np.float64).ravel(), None
        labels = np.asarray(outputs[0])
        proba = np.asarray(outputs[1], dtype=np.float64) if self.has_proba else None
        return labels, proba

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.run(X)[0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray | None:
        return self.run(X)[1]

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "classes": self.classes, "has_proba": self.has_proba}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model"], classes=state["classes"], has_proba=state["has_proba"])  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class OnnxReport:
    converted: bool
    max_abs_diff: float | None = None  # over the checked rows (probabilities for classifiers)
    tolerance: float | None = None  # the bound max_abs_diff was held to
    reason: str | None = None  # why scikit-learn scores (when not converted)
    variant: str | None = None  # which conversion was kept
    rows_checked: int = 0
    attempts: tuple[str, ...] = field(default=())  # each failed variant and why

    def as_dict(self) -> dict[str, Any]:
        return {
            "converted": self.converted,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "reason": self.reason,
            "variant": self.variant,
            "rows_checked": self.rows_checked,
        }


def _session(model: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only: shape notes on score outputs are noise
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _first_line(exc: BaseException, limit: int) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(exc: BaseException) -> str:
    """The error and its root cause, short: converter messages can dump whole trees."""
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    head = _first_line(exc, 120)
    return head if root is exc else f"{head} (cause: {_first_line(root, 160)})"


def _tree_based(pipeline: Pipeline) -> bool:
    estimator = pipeline.steps[-1][1]
    members = np.ravel(np.asarray(getattr(estimator, "estimators_", []), dtype=object))
    return hasattr(estimator, "tree_") or any(hasattr(m, "tree_") for m in members)


def _with_cast(pipeline: Pipeline, X: np.ndarray) -> Pipeline:
    from skl2onnx.sklapi import CastTransformer
    from sklearn.pipeline import Pipeline

    head = pipeline.steps[:-1]
    before = Pipeline(head).transform(X) if head else X
    cast = CastTransformer(dtype=np.float32).fit(before)
    return Pipeline([*head, ("cast_float32", cast), pipeline.steps[-1]])


def _convert(pipeline: Pipeline, n_features: int, classifier: bool) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType

    estimator = pipeline.steps[-1][1]
    # Probabilities as a plain [N, classes] array rather than a list of dicts; only
    # estimators with predict_proba have the option (LinearSVC refuses it).
    with_proba = classifier and hasattr(estimator, "predict_proba")
    options = {id(estimator): {"zipmap": False}} if with_proba else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = convert_sklearn(
            pipeline,
            initial_types=[(INPUT_NAME, DoubleTensorType([None, n_features]))],
            options=options,
        )
    return bytes(onx.SerializeToString())


def _check(
    pipeline: Pipeline, scorer: OnnxScorer, X: np.ndarray, tolerance: float
) -> tuple[float, float, str | None]:
    """(max_abs_diff, bound, disagreement or None)."""
    labels, proba = scorer.run(X)
    if scorer.classes is None:
        ref = np.asarray(pipeline.predict(X), dtype=np.float64).ravel()
        if labels.shape != ref.shape:
            return float("inf"), tolerance, f"output shape {labels.shape} != {ref.shape}"
        diff = float(np.max(np.abs(labels - ref)))
        bound = tolerance * max(1.0, float(np.max(np.abs(ref))))
        if not diff <= bound:  # also catches NaN
            return diff, bound, f"predictions differ by up to {diff:.3g} (> {bound:.3g})"
        return diff, bound, None
    ref_labels = np.asarray(pipeline.predict(X))
    diff, clear = 0.0, np.ones(len(X), dtype=bool)
    if proba is not None:
        ref_proba = np.asarray(pipeline.predict_proba(X), dtype=np.float64)
        if proba.shape != ref_proba.shape:
            return (
                float("inf"),
                tolerance,
                f"probabilities shape {proba.shape} != {ref_proba.shape}",
            )
        diff = float(np.max(np.abs(proba - ref_proba)))
        if not diff <= tolerance:
            return diff, tolerance, f"probabilities differ by up to {diff:.3g} (> {tolerance:g})"
        if ref_proba.shape[1] > 1:
            top2 = np.sort(ref_proba, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 2 * tolerance
    wrong = int(np.sum((labels.astype(ref_labels.dtype) != ref_labels) & clear))
    if wrong:
        return diff, tolerance, f"{wrong} of {len(X)} labels differ"
    return diff, tolerance, None


def to_onnx(
    pipeline: Pipeline, X_check: np.ndarray, *, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[Scorer, OnnxReport]:
    """The fastest scorer that agrees with the fitted ``pipeline`` on ``X_check`` rows.

    ``X_check``: encoded rows (a holdout) the conversion is verified on; at least one.
    Never raises for a model that scikit-learn can score: any conversion, loading or
    agreement failure returns the scikit-learn scorer with the reason in the report.
    """
    X_check = np.asarray(X_check, dtype=np.float64)
    fallback = SklearnScorer(pipeline)
    if X_check.ndim != 2 or len(X_check) == 0:
        return fallback, OnnxReport(False, reason="no rows to verify the conversion on")
    classifier = fallback.classes is not None
    has_proba = classifier and hasattr(pipeline, "predict_proba")
    attempts: list[str] = []
    measured: float | None = None
    # Trees never load in float64 (see above): start with the variant that works for them,
    # a forest's conversion takes seconds.
    order = (FLOAT32_ESTIMATOR, FLOAT64) if _tree_based(pipeline) else (FLOAT64, FLOAT32_ESTIMATOR)
    for variant in order:
        try:
            candidate = pipeline if variant == FLOAT64 else _with_cast(pipeline, X_check)
            model = _convert(candidate, X_check.shape[1], classifier)
            scorer = OnnxScorer(model, classes=fallback.classes, has_proba=has_proba)
            diff, bound, disagreement = _check(pipeline, scorer, X_check, tolerance)
        except Exception as exc:  # converters raise anything from ValueError to RuntimeError
            attempts.append(f"{variant}: {_one_line(exc)}")
            continue
        if disagreement is None:
            return scorer, OnnxReport(
                True,
                max_abs_diff=diff,
                tolerance=bound,
                variant=variant,
                rows_checked=len(X_check),
                attempts=tuple(attempts),
            )
        attempts.append(f"{variant}: {disagreement}")
        measured = diff if measured is None else min(measured, diff)
    return fallback, OnnxReport(
        False,
        max_abs_diff=measured,  # the closest a conversion came, when one ran at all
        reason="; ".join(attempts),
        rows_checked=len(X_check),
        attempts=tuple(attempts),
    )
