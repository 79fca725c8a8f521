"""Metrics as plain functions.

Regression: ``(y_true, y_pred)``, both ``(n,)`` or ``(n, k)``.

Classification: ``y_true`` are integer class codes 0..K−1, shape ``(n,)``; ``y_pred`` are
predicted codes ``(n,)``; ``proba`` are class probabilities ``(n, K)``, K ≥ 2 (for a network
with one sigmoid output p, pass ``sweeper.nn.class_probabilities(p)``: the columns [1 − p, p]).
Each function gives the number scikit-learn's namesake gives.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from sweeper.nn import LOSSES


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """√(mean((ŷ − y)²))."""
    diff = np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64)
    return float(np.sqrt(np.mean(diff * diff)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """mean(|ŷ − y|)."""
    return float(np.mean(np.abs(np.asarray(y_pred, np.float64) - np.asarray(y_true, np.float64))))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """1 − Σ(y − ŷ)² / Σ(y − ȳ)² (per output, then averaged, as scikit-learn's r2_score)."""
    y_true = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, np.float64).reshape(len(y_pred), -1)
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res > 0, 0.0, 1.0))
    return float(scores.mean())


METRICS = {"rmse": rmse, "mae": mae, "r2": r2}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``{"rmse": .., "mae": .., "r2": ..}``."""
    return {name: fn(y_true, y_pred) for name, fn in METRICS.items()}


# ---------------------------------------------------------------------- classification
def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """(1/n) Σ [ŷᵢ = yᵢ] for class codes ``(n,)``."""
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """−(1/n) Σᵢ log pᵢ,yᵢ with p clipped to [ε, 1 − ε], ε = float64 machine epsilon: the
    cross-entropy ``Network.data_loss`` reports, on codes ``(n,)`` and ``proba`` ``(n, K)``."""
    y_true, proba = _codes_and_proba(y_true, proba)
    return LOSSES["cross_entropy"]()(proba, np.eye(proba.shape[1])[y_true])


def f1_macro(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes c present in y_true ∪ y_pred of F1_c = 2·TP_c / (2·TP_c + FP_c + FN_c)
    (0 when TP_c = 0), for codes ``(n,)``; scikit-learn's f1_score(average="macro")."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    _, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    true, pred = codes[: len(y_true)], codes[len(y_true):]
    n_classes = int(codes.max()) + 1
    true_positives = np.bincount(true[true == pred], minlength=n_classes)
    # 2·TP + FP + FN = (number labelled c) + (number predicted c), ≥ 1 for every class present.
    labelled = np.bincount(true, minlength=n_classes)
    predicted = np.bincount(pred, minlength=n_classes)
    return float(np.mean(2.0 * true_positives / (labelled + predicted)))


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Area under the ROC curve, for codes ``(n,)`` and ``proba`` ``(n, K)``.

    K = 2: the AUC of ``proba[:, 1]`` for class 1, i.e. the probability that a random positive
    scores above a random negative, ties counting ½:
    AUC = (Σ_{positives} rank − n₊(n₊ + 1)/2) / (n₊ n₋), ranks 1..n with ties averaged.
    K > 2: one-vs-rest, the mean over the classes k present in y_true of the AUC of
    ``proba[:, k]`` for class k against the rest. NaN when y_true holds a single class.
    scikit-learn's roc_auc_score (multi_class="ovr", average="macro" for K > 2).
    """
    y_true, proba = _codes_and_proba(y_true, proba)
    if proba.shape[1] == 2:
        return _binary_auc(y_true == 1, proba[:, 1])
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([_binary_auc(y_true == k, proba[:, k]) for k in present]))


CLASSIFICATION_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y_true, proba: accuracy(y_true, np.argmax(proba, axis=1)),
    "log_loss": log_loss,
    "f1_macro": lambda y_true, proba: f1_macro(y_true, np.argmax(proba, axis=1)),
    "roc_auc": roc_auc,
}
"""Every classification metric as a function of ``(y_true, proba)``; accuracy and f1_macro score
the most probable class (the first one on a tie)."""


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``{"accuracy": .., "log_loss": .., "f1_macro": .., "roc_auc": ..}`` for codes ``(n,)`` and
    ``proba`` ``(n, K)``."""
    return {name: fn(y_true, proba) for name, fn in CLASSIFICATION_METRICS.items()}


def _codes_and_proba(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as integer codes ``(n,)`` and ``proba`` as float64 ``(n, K)``, K ≥ 2, checked."""
    y_true, proba = np.asarray(y_true), np.asarray(proba, np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2 or len(proba) != len(y_true):
        raise ValueError(
            f"proba must have shape (n_samples, n_classes >= 2) with n_samples = {len(y_true)}, "
            f"got {proba.shape}"
        )
    if y_true.ndim != 1 or not np.issubdtype(y_true.dtype, np.integer) or (
        len(y_true) and not 0 <= y_true.min() <= y_true.max() < proba.shape[1]
    ):
        raise ValueError(f"y_true must be integer class codes 0..{proba.shape[1] - 1}, shape (n_samples,)")
    return y_true, proba


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Mann–Whitney AUC of ``score`` ``(n,)`` for the boolean labels ``positive`` ``(n,)``;
    NaN unless both classes occur."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, group, counts = np.unique(score, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # ranks of a tied group, averaged
    return float((average_rank[group][positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


#: The metrics whose higher values are better; every other (errors, losses, the gap) is minimised.
MAXIMIZED = ("r2", "accuracy", "f1_macro", "roc_auc")


def infer_direction(metric: str) -> str:
    """``maximize`` for R², accuracy, F1 and ROC AUC metrics, ``minimize`` for errors and losses."""
    return "maximize" if metric.endswith(MAXIMIZED) else "minimize"
