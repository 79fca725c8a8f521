"""Regression metrics as plain functions of ``(y_true, y_pred)``, both ``(n,)`` or ``(n, k)``."""
from __future__ import annotations

import numpy as np


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
