"""What every model family provides: data, features, estimator, fallback, metrics, scoring."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from ia_continu.errors import InvalidFeatures


@dataclass(slots=True)
class Scores:
    """The answer for a batch of rows, as arrays (one entry per row)."""

    prediction: np.ndarray
    confidence: np.ndarray
    risk_level: list[str] | None = None
    contributing_factors: list[dict[str, float]] | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


class ModelFamily(ABC):
    name: ClassVar[str]
    task: ClassVar[Literal["classification", "regression"]]
    feature_names: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    trusted_types: ClassVar[tuple[str, ...]] = ()  # our own callables inside the pipeline

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

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

    def validate(self, X: np.ndarray) -> None:
        """Check domain rules beyond shape and finiteness; raise InvalidFeatures."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise InvalidFeatures(
                f"expected {self.n_features} features {list(self.feature_names)}, "
                f"got {X.shape[-1] if X.ndim else 0}"
            )
        if not np.isfinite(X).all():
            raise InvalidFeatures("features must be finite numbers (no NaN or infinity)")

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
        """Raise InvalidFeatures when a dataset cannot train this family (e.g. one class)."""

    @abstractmethod
    def predict_values(self, pipeline: Any, X: np.ndarray) -> np.ndarray:
        """Point predictions (labels or minutes) for evaluation."""

    @abstractmethod
    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]: ...

    def after_fit(self, pipeline: Any, y_hold: np.ndarray, pred_hold: np.ndarray) -> None:
        """Keep on the fitted ``pipeline`` what serving needs from the holdout (default: none)."""

    def is_better(
        self, challenger: dict[str, float], champion: dict[str, float], margin: float
    ) -> bool:
        """Does the challenger do no worse than the champion (within ``margin``)?"""
        new, old = challenger[self.primary_metric], champion[self.primary_metric]
        return new >= old - margin if self.higher_is_better else new <= old + margin

    # --- serving ---------------------------------------------------------------------
    @abstractmethod
    def compile_scorer(self, pipeline: Any, *, explain: bool = True) -> Any:
        """A fast callable ``X -> Scores`` for the hot path (numpy where possible)."""

    @abstractmethod
    def fallback(self, X: np.ndarray) -> Scores:
        """The heuristic that answers when ML is off, outside the share, or fails."""

    @abstractmethod
    def accurate(self, prediction: np.ndarray, actual: np.ndarray, tolerance: float) -> np.ndarray:
        """Is each prediction 'right' once the outcome is known?"""
