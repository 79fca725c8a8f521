"""Training on arrays: the epoch loop, early stopping, metrics."""
from .early_stopping import EarlyStopping
from .metrics import (CLASSIFICATION_METRICS, METRICS, accuracy, classification_metrics, f1_macro,
                      log_loss, mae, r2, regression_metrics, rmse, roc_auc)
from .trainer import (COLLAPSED, COMPLETED, DIVERGED, EARLY_STOPPED, FAILED, STOPPED, EpochLog, TrainResult,
                      check_fit_arguments, collapsed, fit, fit_folds)

__all__ = [
    "CLASSIFICATION_METRICS",
    "COLLAPSED",
    "COMPLETED",
    "DIVERGED",
    "EARLY_STOPPED",
    "FAILED",
    "METRICS",
    "STOPPED",
    "EarlyStopping",
    "EpochLog",
    "TrainResult",
    "accuracy",
    "check_fit_arguments",
    "classification_metrics",
    "collapsed",
    "f1_macro",
    "fit",
    "fit_folds",
    "log_loss",
    "mae",
    "r2",
    "regression_metrics",
    "rmse",
    "roc_auc",
]
