"""What a model's task changes in the loop, in one object per task.

A family names its task (``ModelFamily.task``) and hands out that task's rules
(``ModelFamily.rules``). The stages ask the rules instead of testing the task's name:

- monitoring (``ia_continu.watch.quality``): which figures exist beyond the common ones
  (precision, recall and F1 for a binary label) and how ML is compared with the fallback
  on shadow rows (accuracy for labels, mean absolute error for numbers);
- decisions (``ia_continu.decide``): which figures judge the model against which setting,
  for the performance alert and for the retrain rule.

What is right for one prediction (``ModelFamily.accurate``) depends on the family, not only
on its task (the delay family's tolerance), so it stays on the family.

A new task (a multiclass model, a declared model) is one more ``TaskRules`` subclass here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal

from sqlalchemy import ColumnElement, case, func

from ia_continu.vocab import Task

SQL = ColumnElement[Any]  # a column or expression of the prediction log


def when(cond: ColumnElement[bool], value: Any = 1) -> SQL:
    """``value`` where ``cond`` holds, else NULL: what ``count()`` or ``sum()`` skips."""
    return case((cond, value), else_=None)


@dataclass(frozen=True, slots=True)
class Limit:
    """A monitoring figure that judges the model, against the setting that holds its limit."""

    figure: str  # a field of ia_continu.watch.quality.Figures: "r2", "accuracy_rate"
    setting: str  # a field of Settings: "r2_threshold"
    direction: Literal["<", ">"]  # "<": the figure must stay below the limit, ">": above
    label: str = ""  # how a retrain reason names the figure ("R²"); default: its name
    only_when_known: bool = False  # an unknown value is left out instead of "no data"

    @property
    def name(self) -> str:
        return self.label or self.figure


# Every task is judged on these: the share of accurate predictions and the answer time.
COMMON_LIMITS = (
    Limit("accuracy_rate", "accuracy_threshold", ">"),
    Limit("avg_prediction_time_ms", "latency_threshold_ms", "<"),
)


class TaskRules(ABC):
    """The task-dependent answers of monitoring and decisions (see the module docstring)."""

    task: ClassVar[Task]
    # The figure that compares ML with the fallback on shadow rows: "accuracy" or "mae".
    lift_metric: ClassVar[str]
    # Checked by the performance alert, after COMMON_LIMITS.
    performance_limits: ClassVar[tuple[Limit, ...]]
    # What "the model got worse" means for the retrain rule (any one crossed).
    retrain_limits: ClassVar[tuple[Limit, ...]]
    # MAE, RMSE and R² mean something: the answer is a number. On class labels or indices
    # they would be figures about the numbering, so a classifier's are None.
    numeric_errors: ClassVar[bool] = False

    def figure_sums(self, prediction: SQL, actual: SQL) -> list[SQL]:
        """Extra labelled aggregates over a window's rows, read back by ``figures``."""
        return []

    def figures(self, sums: Mapping[str, Any], labeled: int) -> dict[str, float | None]:
        """The task's own figures from ``figure_sums`` (all None without labelled rows)."""
        return {}

    @abstractmethod
    def lift_sum(self, answer: SQL, actual: SQL, other_known: ColumnElement[bool]) -> SQL:
        """Summed over the shadow rows (``other_known``: the other answer was logged too): the
        ``lift_metric`` of ``answer`` times the number of rows."""

    @abstractmethod
    def lift(self, ml: float, fallback: float) -> float:
        """How much better ML's ``lift_metric`` is than the fallback's (positive: ML wins)."""


class ClassificationRules(TaskRules):
    """A binary label (0 or 1): accuracy, and precision/recall/F1 of the positive class."""

    task = Task.classification
    lift_metric = "accuracy"
    # No MAE or R² for a label: F1 stands in, against the same limit as accuracy.
    performance_limits = (Limit("f1", "accuracy_threshold", ">", only_when_known=True),)
    retrain_limits = (Limit("accuracy_rate", "accuracy_threshold", ">", "accuracy"),)

    def figure_sums(self, prediction: SQL, actual: SQL) -> list[SQL]:
        # ``actual = 1.0`` is NULL, hence false, on rows without an outcome.
        positive_pred, positive_actual = prediction == 1.0, actual == 1.0
        return [
            func.count(when(positive_pred & positive_actual)).label("tp"),
            func.count(when(positive_pred & (actual != 1.0))).label("fp"),
            func.count(when((prediction != 1.0) & positive_actual)).label("fn"),
        ]

    def figures(self, sums: Mapping[str, Any], labeled: int) -> dict[str, float | None]:
        if not labeled:
            return {"precision": None, "recall": None, "f1": None}
        tp, fp, fn = int(sums["tp"] or 0), int(sums["fp"] or 0), int(sums["fn"] or 0)
        # scikit-learn's zero_division=0: no positive predicted (or present) scores 0.
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1}

    def lift_sum(self, answer: SQL, actual: SQL, other_known: ColumnElement[bool]) -> SQL:
        # ``answer = actual`` is NULL when either is NULL: no separate NOT NULL test needed.
        return func.count(when(other_known & (answer == actual)))

    def lift(self, ml: float, fallback: float) -> float:
        return ml - fallback


class RegressionRules(TaskRules):
    """A number: MAE, RMSE and R² judge the model."""

    task = Task.regression
    lift_metric = "mae"
    numeric_errors = True
    performance_limits = (
        Limit("mae", "mae_threshold", "<"),
        Limit("r2", "r2_threshold", ">"),
        Limit("rmse", "rmse_threshold", "<"),
    )
    retrain_limits = (
        Limit("r2", "r2_threshold", ">", "R²"),
        Limit("rmse", "rmse_threshold", "<", "RMSE"),
    )

    def lift_sum(self, answer: SQL, actual: SQL, other_known: ColumnElement[bool]) -> SQL:
        return func.sum(func.abs(when(other_known, answer - actual)))

    def lift(self, ml: float, fallback: float) -> float:
        return fallback - ml  # errors: the smaller, the better


class MulticlassRules(TaskRules):
    """One of ``k`` classes (stored as indices 0..k-1): accuracy, and macro precision, recall
    and F1 (every class counts the same, as scikit-learn's ``average="macro"``: averaged over
    the classes present among the window's actuals or predictions, so a class nobody saw
    nor predicted does not drag the average down with a 0)."""

    task = Task.multiclass
    lift_metric = "accuracy"
    performance_limits = (Limit("f1", "accuracy_threshold", ">", only_when_known=True),)
    retrain_limits = (Limit("accuracy_rate", "accuracy_threshold", ">", "accuracy"),)

    def __init__(self, k: int) -> None:
        self.k = k

    def figure_sums(self, prediction: SQL, actual: SQL) -> list[SQL]:
        sums: list[SQL] = []
        for c in range(self.k):
            p, a = prediction == float(c), actual == float(c)
            sums += [
                func.count(when(p & a)).label(f"tp{c}"),
                func.count(when(p & (actual != float(c)))).label(f"fp{c}"),
                func.count(when((prediction != float(c)) & a)).label(f"fn{c}"),
            ]
        return sums

    def figures(self, sums: Mapping[str, Any], labeled: int) -> dict[str, float | None]:
        if not labeled:
            return {"precision": None, "recall": None, "f1": None}
        precision = recall = f1 = 0.0
        present = 0
        for c in range(self.k):
            tp, fp, fn = (int(sums[f"{x}{c}"] or 0) for x in ("tp", "fp", "fn"))
            if not tp + fp + fn:
                continue  # neither an actual nor a prediction of this class
            present += 1
            # scikit-learn's zero_division=0: a class never predicted (or never actual) scores 0.
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            precision, recall = precision + p, recall + r
            f1 += 2 * p * r / (p + r) if p + r else 0.0
        n = max(present, 1)
        return {"precision": precision / n, "recall": recall / n, "f1": f1 / n}

    def lift_sum(self, answer: SQL, actual: SQL, other_known: ColumnElement[bool]) -> SQL:
        return func.count(when(other_known & (answer == actual)))

    def lift(self, ml: float, fallback: float) -> float:
        return ml - fallback


_RULES: dict[Task, TaskRules] = {
    rules.task: rules for rules in (ClassificationRules(), RegressionRules())
}


def rules_for(task: Task) -> TaskRules:
    return _RULES[task]


@lru_cache(maxsize=64)
def multiclass_rules(k: int) -> MulticlassRules:
    """The rules of a ``k``-class model (one shared instance per ``k``)."""
    return MulticlassRules(k)
