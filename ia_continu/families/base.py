"""What every model family provides: data, features, estimator, fallback, metrics, scoring.

A family is also the one place that answers task-dependent questions: ``task`` names what it
predicts, ``rules`` says what that changes in monitoring and decisions, and ``accurate`` says
when one prediction is right.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import numpy as np
from sqlalchemy import ColumnElement

from ia_continu.errors import InvalidActual, InvalidFeatures
from ia_continu.families.tasks import TaskRules, rules_for
from ia_continu.vocab import Task

if TYPE_CHECKING:
    from ia_continu.config import Settings
    from ia_continu.serve.forms import ServingForm

# ``accurate`` takes numpy arrays or SQL expressions and answers in kind.
Values = TypeVar("Values", np.ndarray, ColumnElement[Any])


@dataclass(slots=True)
class Scores:
    """The answer for a batch of rows, as arrays (one entry per row)."""

    prediction: np.ndarray
    confidence: np.ndarray
    risk_level: list[str] | None = None
    # A list, or a sequence built on first use (the delay batch's ``TopFactors``).
    contributing_factors: Sequence[dict[str, float]] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


class ModelFamily(ABC):
    # Class attributes in the built-in families, instance attributes in a declared one.
    name: str
    task: Task
    feature_names: tuple[str, ...]
    primary_metric: str
    higher_is_better: bool
    trusted_types: ClassVar[tuple[str, ...]] = ()  # our own callables inside the pipeline
    # A declared model takes rows of any JSON cells (categories as text, rows by name) and
    # encodes them itself (``encode_rows``); a built-in family takes numbers only.
    encodes_cells: ClassVar[bool] = False

    @classmethod
    def configured(cls, settings: Settings | None) -> Self:
        """This family as ``settings`` tune it (None: the defaults); most have nothing to tune."""
        return cls()

    def encode_rows(self, rows: Any) -> np.ndarray:
        """Rows of cells -> a validated float matrix (families with ``encodes_cells``)."""
        raise NotImplementedError(f"{self.name} takes numbers, not cells")

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def rules(self) -> TaskRules:
        """What this family's task changes in monitoring and decisions."""
        return rules_for(self.task)

    # --- data ------------------------------------------------------------------------
    @abstractmethod
    def sample(
        self, n: int, *, rng: np.random.Generator, drift: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` observed feature rows and their realised outcomes.

        ``drift`` (0 = none) shifts what the sensors report while the outcome still follows
        the true, unshifted world: a model trained before the shift gets worse, not only the
        input distribution.
        """

    def feature_default(self, name: str) -> float | None:
        """The encoded value a stored row that lacks feature ``name`` takes (None: such a row
        cannot be read; default: every feature is required)."""
        return None

    def validate(self, X: np.ndarray) -> None:
        """Check domain rules beyond shape and finiteness; raise InvalidFeatures."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InvalidFeatures(
                f"expected {self.n_features} features {list(self.feature_names)}, "
                f"got {X.shape[-1] if X.ndim else 0}"
            )
        if not np.isfinite(X).all():
            raise InvalidFeatures("features must be finite numbers (no NaN or infinity)")

    def encode_frame(self, frame: Any) -> np.ndarray:
        """A dataset frame (one column per feature, by name) as the validated matrix."""
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise InvalidFeatures(f"missing columns {missing}; expected {list(self.feature_names)}")
        try:
            X = frame[list(self.feature_names)].to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidFeatures(f"every feature must be a number: {exc}") from None
        self.validate(X)
        return X

    def target_codes(self, y: Any) -> np.ndarray:
        """Outcomes as the loop stores them (numbers; class indices for classifiers)."""
        return np.fromiter((self.outcome_code(v) for v in y), np.float64)

    def outcome_code(self, value: Any) -> float:
        """One posted outcome as stored; raise InvalidActual saying what is wrong."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidActual(f"must be a finite number, not {type(value).__name__}")
        x = float(value)
        if not math.isfinite(x):
            raise InvalidActual("must be finite (no NaN or infinity)")
        problem = self.outcome_problem(x)
        if problem is not None:
            raise InvalidActual(f"{x:g}: {problem}")
        return x

    def decode(self, X: np.ndarray) -> Any:
        """The matrix as a frame of named features (what drift reports show)."""
        import pandas as pd

        return pd.DataFrame(X, columns=list(self.feature_names))

    def outcome_problem(self, value: float) -> str | None:
        """Why ``value`` (finite) cannot be a real outcome of this family; None when it can.

        Checked wherever outcomes come in (``record_actuals``), so no stored outcome is
        absurd enough to make the monitoring figures meaningless or their sums overflow.
        """
        return None

    # --- model -----------------------------------------------------------------------
    @abstractmethod
    def build_pipeline(self) -> Any:
        """An unfitted scikit-learn pipeline: feature engineering then estimator."""

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]: ...

    @abstractmethod
    def check_trainable(self, y: np.ndarray) -> None:
        """Raise UntrainableDataset when a dataset cannot train this family (e.g. one class)."""

    @abstractmethod
    def predict_values(self, pipeline: Any, X: np.ndarray) -> np.ndarray:
        """Point predictions (labels or minutes) for evaluation."""

    @abstractmethod
    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]: ...

    def fit_target(self, y: np.ndarray) -> np.ndarray:
        """The outcomes as the estimator is fitted on them (default: as stored)."""
        return y

    def after_fit(  # noqa: B027 (a hook: doing nothing is the default)
        self,
        pipeline: Any,
        y_hold: np.ndarray,
        pred_hold: np.ndarray,
        X_hold: np.ndarray | None = None,
        y_train: np.ndarray | None = None,
    ) -> None:
        """Keep on the fitted ``pipeline`` what serving needs from the holdout (default: none)."""

    def is_better(
        self, challenger: dict[str, float], champion: dict[str, float], margin: float
    ) -> bool:
        """Does the challenger do no worse than the champion (within ``margin``)?"""
        new, old = challenger[self.primary_metric], champion[self.primary_metric]
        return new >= old - margin if self.higher_is_better else new <= old + margin

    def skops_trusted_types(self, pipeline: Any) -> list[str]:
        """Types skops must be told to trust to save and load ``pipeline`` (our own code)."""
        return list(self.trusted_types)

    def run_artifacts(self, pipeline: Any) -> dict[str, bytes]:
        """Files logged with the training run besides the model (path -> content)."""
        return {}

    # --- serving ---------------------------------------------------------------------
    def serving_engine(self, pipeline: Any) -> str:
        """What computes the served answers (shown by ``GET /models``)."""
        return "numpy"

    def adopt(self, pipeline: Any) -> None:  # noqa: B027 (a hook: doing nothing is the default)
        """Called when ``pipeline`` becomes the served champion (a declared model takes its
        fitted fallback from it)."""

    def adopt_form(self, form: ServingForm) -> None:  # noqa: B027 (a hook, as adopt)
        """``adopt`` for a champion served from its form (``ia_continu.serve.forms``)."""

    @abstractmethod
    def compile_scorer(self, pipeline: Any, *, explain: bool = True) -> Any:
        """A fast callable ``X -> Scores`` for the hot path (numpy where possible)."""

    def serving_form(self, pipeline: Any) -> ServingForm | None:
        """``pipeline`` as arrays the API can serve without scikit-learn, or None: then it is
        served from MLflow (see ``ia_continu.serve.forms``)."""
        return None

    def scorer_from_form(self, form: ServingForm, *, explain: bool = True) -> Any:
        """The scorer of a served form this family wrote, or None for a kind it does not
        know (a newer release's): the version is then loaded from MLflow."""
        return None

    def onnx_report(self, pipeline: Any) -> dict[str, Any] | None:
        """How the pipeline's ONNX conversion went (declared models), as ``GET /models``
        shows it; None where there is none."""
        return None

    def estimator_name(self, pipeline: Any) -> str:
        """The class of the pipeline's final step, as ``/health`` shows it."""
        return type(pipeline.steps[-1][1]).__name__

    @abstractmethod
    def fallback(self, X: np.ndarray) -> Scores:
        """The heuristic that answers when ML is off, outside the share, or fails."""

    def label(self, value: float) -> Any:
        """One prediction as the API answers it (``/predict``): a class as an int, a number
        rounded to 4 decimals."""
        return int(value) if self.task == Task.classification else round(value, 4)

    def labels(self, values: np.ndarray) -> list[Any]:
        """``label`` for a column of predictions, in numpy (``/predict/batch``)."""
        if self.task == Task.classification:
            return values.astype(int).tolist()
        return values.round(4).tolist()

    @abstractmethod
    def accurate(self, prediction: Values, actual: Values) -> Values:
        """Is each prediction right once its outcome is known?

        Written only with operators that numpy arrays and SQL expressions share (``==``,
        ``-``, ``<``, ``&``), so one definition judges a holdout in numpy (``evaluate``) and
        fills ``is_accurate`` inside the database's UPDATE (``record_actuals``).
        """
