"""Training on arrays: the epoch loop, early stopping, metrics."""
from .early_stopping import EarlyStopping
from .metrics import METRICS, mae, r2, regression_metrics, rmse
from .trainer import COMPLETED, DIVERGED, EARLY_STOPPED, STOPPED, EpochLog, TrainResult, fit

__all__ = [
    "COMPLETED",
    "DIVERGED",
    "EARLY_STOPPED",
    "METRICS",
    "STOPPED",
    "EarlyStopping",
    "EpochLog",
    "TrainResult",
    "fit",
    "mae",
    "r2",
    "regression_metrics",
    "rmse",
]
