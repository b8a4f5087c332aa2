"""A declared model's metrics and its promotion gate.

All the task's metrics are computed (they are logged), the gate compares one of them.
Multiclass precision/recall/F1 are macro averages (every class counts the same, so a rare
class that is never predicted pulls the score down); binary ones are about the second
declared class, the "positive" one (``classes = [0, 1]`` → 1). Regression ``accuracy`` is
the share of predictions within ``tolerance``.
"""

from __future__ import annotations

import numpy as np

from ia_continu.declared.schema import Declaration


def evaluate(declaration: Declaration, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    # Imported here: evaluation is training's, and a serving process has no scikit-learn.
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        mean_absolute_error,
        mean_squared_error,
        precision_recall_fscore_support,
        r2_score,
    )

    if declaration.is_classifier:
        labels = list(declaration.classes)
        if declaration.task == "binary":
            kwargs: dict[str, object] = {"average": "binary", "pos_label": labels[1]}
        else:
            kwargs = {"average": "macro", "labels": labels}
        precision, recall, _, _ = precision_recall_fscore_support(
            y_true, y_pred, zero_division=0, **kwargs
        )
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1_score(y_true, y_pred, zero_division=0, **kwargs)),
        }
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
        "accuracy": float(np.mean(np.abs(y_true - y_pred) < float(declaration.tolerance or 0))),
    }


def is_better(
    declaration: Declaration, challenger: dict[str, float], champion: dict[str, float]
) -> bool:
    """Does the challenger do no worse than the champion on the gate metric, within margin?"""
    gate = declaration.gate
    new, old = challenger[gate.metric], champion[gate.metric]
    return new >= old - gate.margin if gate.higher_is_better else new <= old + gate.margin
