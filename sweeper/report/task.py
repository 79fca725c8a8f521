"""What a sweep's runs predict, and so which of their logged metrics the report shows.

A regression run logs ``{split}_{rmse,mae,r2}`` and curves of ½·squared error of the scaled
target; a classification run logs ``{split}_{accuracy,log_loss,f1_macro,roc_auc}`` and curves of
the mean cross-entropy. The task is read from the runs themselves (``task_of``), never from the
dataset's name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sweeper.train.metrics import infer_direction

#: Readable names of the logged metrics (``val_`` + name = an objective).
METRIC_NAMES = {"rmse": "RMSE", "mae": "MAE", "r2": "R²", "loss": "loss", "log_loss": "log loss",
                "accuracy": "accuracy", "f1_macro": "macro F1", "roc_auc": "ROC AUC"}
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Task:
    """How the report reads and labels one task's runs."""

    name: str  # the ``data.task`` value
    metrics: tuple[str, ...]  # final metrics logged per split, e.g. ("rmse", "mae", "r2")
    objective: str  # what ``objective: auto`` resolves to
    score: str  # the metric shown per trial beside the objective, on validation and test
    flattery: str  # the error-like metric val_test_gap compares: (test − val) / val
    loss: str  # what the loss curves are called on axes and in captions
    loss_unit: str  # their scale, e.g. "scaled target"
    glossary: Mapping[str, str] = field(default_factory=dict)  # its own entries in the HTML glossary

    @property
    def final_metrics(self) -> tuple[str, ...]:
        """``{train,val,test}_{metric}``, in that order."""
        return tuple(f"{split}_{name}" for split in SPLITS for name in self.metrics)


REGRESSION = Task("regression", ("rmse", "mae", "r2"), objective="val_rmse", score="rmse", flattery="rmse",
                  loss="loss", loss_unit="scaled target")
CLASSIFICATION = Task(
    "classification", ("accuracy", "log_loss", "f1_macro", "roc_auc"), objective="val_log_loss",
    score="accuracy", flattery="log_loss", loss="cross-entropy", loss_unit="nats",
    glossary={
        "train_loss, val_loss, test_loss":
            "Mean cross-entropy per epoch, −(1/n) Σᵢ log pᵢ,yᵢ in nats (pᵢ,yᵢ the probability the network gave "
            "row i's true class), without penalties.",
        "val_accuracy, test_accuracy":
            "(1/n) Σᵢ [ŷᵢ = yᵢ], ŷᵢ the most probable class: the share of rows classified right, as the run "
            "logged it.",
        "val_log_loss, test_log_loss":
            "−(1/n) Σᵢ log pᵢ,yᵢ with p clipped to [ε, 1 − ε], as the run logged it.",
    },
)
TASKS = {task.name: task for task in (REGRESSION, CLASSIFICATION)}


def task_of(params: Iterable[Mapping[str, object]], metrics: Iterable[Mapping[str, float]]) -> Task:
    """The task of a sweep from its runs' params and final metrics.

    The runs' logged ``data.task`` (the most common known value) decides; runs logged without
    it are classification when one logged a classification-only metric (``test_accuracy``,
    ``val_log_loss``, ...), else regression.
    """
    logged = Counter(str(p.get("data.task")) for p in params if str(p.get("data.task")) in TASKS)
    if logged:
        return TASKS[logged.most_common(1)[0][0]]
    only_classification = set(CLASSIFICATION.final_metrics) - set(REGRESSION.final_metrics)
    return CLASSIFICATION if any(only_classification & set(m) for m in metrics) else REGRESSION


def maximized(objective: str) -> bool:
    """True when higher is better (R², accuracy, F1, ROC AUC): the direction the sweep inferred."""
    return infer_direction(objective) == "maximize"


def metric_name(metric: str) -> str:
    """``val_rmse`` -> "validation RMSE", ``test_log_loss`` -> "test log loss"; unknown names as they are."""
    split, _, name = metric.partition("_")
    where = {"val": "validation", "train": "training", "test": "test"}.get(split)
    return f"{where} {METRIC_NAMES[name]}" if where and name in METRIC_NAMES else metric
