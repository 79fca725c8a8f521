"""One row per trial: params, final metrics, state, and the overfitting / early-stopping columns.

The derived columns are computed from the logged curves (``train_loss``, ``val_loss``,
``test_loss``, one value per epoch, epochs from 1: ½·squared error of the scaled target for
regression, cross-entropy for classification); their formulas are in the docstrings below and in
the report's HTML. Which final metrics a row has depends on the sweep's task
(``sweeper.report.task``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from sweeper.report.source import FAIL_REASON_TAG, STATE_TAG, TRAIN_STATUS_TAG, TRIAL_TAG, Sweep
from sweeper.report.task import REGRESSION, Task, maximized, task_of

COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"

#: The columns of trials.csv around the task's final metrics (``columns``).
LEADING_COLUMNS = ("trial", "run_id", "state", "objective_value")
DERIVED_COLUMNS = (
    "best_epoch", "epochs_run", "configured_epochs", "overfit_epochs", "generalization_gap",
    "val_test_gap", "patience", "early_stopped", "early_stop_saving", "early_stop_replayed",
    "train_seconds", "train_status", "fail_reason",
)
#: Params that say where a run was logged, not how it trained: never a searched knob.
NOT_KNOBS = re.compile(r"^(mlflow\.|data\.path$)")


def columns(task: Task = REGRESSION) -> tuple[str, ...]:
    """The columns every trials.csv of ``task`` has, in this order; the run's params (dotted keys) follow."""
    return (*LEADING_COLUMNS, *task.final_metrics, *DERIVED_COLUMNS)


_RUN_STATUS_TO_STATE = {"FINISHED": COMPLETE, "FAILED": FAIL, "KILLED": FAIL}
_INT = re.compile(r"^[+-]?\d+$")


@dataclass
class Trials:
    """The trials table with what the plots need besides it."""

    frame: pd.DataFrame
    curves: dict[str, dict[str, list[float]]]  # run_id -> {"train_loss": [...], ...}
    params: dict[str, dict[str, Any]]  # run_id -> parsed params; a conditional key is absent, not None
    knobs: list[str]  # params that vary between trials (the searched ones), in logged order
    objective: str  # e.g. "val_rmse"
    maximize: bool  # True for val_r2, val_accuracy, val_f1_macro, val_roc_auc
    reference_patience: int | None  # patience used to replay early stopping on runs without it
    info: dict[str, Any] = field(default_factory=dict)
    task: Task = REGRESSION

    @property
    def finished(self) -> pd.DataFrame:
        """COMPLETE trials: the ones with a finished curve, used by every statistic."""
        return self.frame[self.frame["state"] == COMPLETE]

    def top(self, k: int) -> pd.DataFrame:
        """The ``k`` best finished trials by the objective."""
        ranked = self.finished.dropna(subset=["objective_value"])
        return ranked.sort_values("objective_value", ascending=not self.maximize, kind="stable").head(k)


# --- the derived columns ----------------------------------------------------------------------


def best_epoch(val_loss: Sequence[float], min_delta: float = 0.0) -> int:
    """The best validation epoch (from 1) as early stopping picks it; 0 if no loss is finite.

    Epoch e improves when val_loss[e] < best_so_far − min_delta, so with min_delta = 0 this is
    the first epoch of the minimum. A NaN/inf loss never improves.
    """
    best, epoch = math.inf, 0
    for e, loss in enumerate(val_loss, start=1):
        if math.isfinite(loss) and loss < best - min_delta:
            best, epoch = loss, e
    return epoch


def replayed_stop_epoch(val_loss: Sequence[float], patience: int, min_delta: float = 0.0) -> int | None:
    """The epoch at which early stopping with ``patience`` would have stopped on this curve.

    The first epoch e with e − best_epoch(val_loss[:e]) ≥ patience (``EarlyStopping.update``'s
    rule), or None when the curve never waits that long.
    """
    best, best_at = math.inf, 0
    for e, loss in enumerate(val_loss, start=1):
        if math.isfinite(loss) and loss < best - min_delta:
            best, best_at = loss, e
        elif e - best_at >= patience:
            return e
    return None


def generalization_gap(train_loss: Sequence[float], val_loss: Sequence[float], best: int) -> float:
    """val_loss − train_loss at the best epoch (SPEC's definition); NaN when there is none."""
    if best < 1 or best > min(len(train_loss), len(val_loss)):
        return math.nan
    return float(val_loss[best - 1] - train_loss[best - 1])


def early_stop_saving(configured_epochs: int, epochs_run: int, val_loss: Sequence[float],
                      patience: int | None, reference_patience: int | None,
                      min_delta: float = 0.0) -> tuple[float, bool]:
    """Fraction of the epoch budget early stopping saved, and whether it was replayed.

    saving = (E − s) / E, with E = the configured ``train.epochs`` and s = the epoch training
    stopped at:
    - early stopping on: s = epochs_run (so a run that never triggered it saved 0);
    - early stopping off: s = ``replayed_stop_epoch(val_loss, reference_patience)``, the epoch
      early stopping would have stopped at, or E when it would not have (replayed = True).
    Only meaningful for COMPLETE runs; the caller leaves it NaN for pruned and failed ones.
    """
    budget = configured_epochs or epochs_run
    if budget <= 0:
        return math.nan, False
    if patience is not None:
        return (budget - epochs_run) / budget, False
    if reference_patience is None:
        return math.nan, True
    stop = replayed_stop_epoch(val_loss, reference_patience, min_delta)
    return (budget - min(stop or budget, budget)) / budget, True


def val_test_gap(val_error: float, test_error: float) -> float:
    """How far validation flattered test: (test_error − val_error) / val_error, on the task's
    error-like metric (``Task.flattery``): test_rmse and val_rmse for regression, test_log_loss
    and val_log_loss for classification.

    Positive: the test error is that fraction above what validation promised (the sweep chose
    on validation, so a positive value is expected and a large one is selection optimism).
    """
    if not (np.isfinite(val_error) and np.isfinite(test_error)) or val_error == 0:
        return math.nan
    return float((test_error - val_error) / val_error)


# --- building the table ------------------------------------------------------------------------


def parse_param(text: str) -> Any:
    """MLflow stores params as ``str(value)``: 'None' -> None, 'True' -> True, '0.1' -> 0.1.

    Anything else (a list such as '[32, 16]', a name) stays a string.
    """
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    if _INT.match(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _number(value: Any) -> float | None:
    return None if value is None or isinstance(value, (str, bool)) else float(value)


def _state(run: Any) -> str:
    return run.data.tags.get(STATE_TAG) or _RUN_STATUS_TO_STATE.get(run.info.status, run.info.status)


def _objective_value(objective: str, metrics: dict, val_loss: Sequence[float], best: int,
                     restores_best: bool) -> float:
    """The value the sweep told Optuna: the final metric ``objective``.

    ``val_loss`` is not logged as a final metric (its history is the curve), so it is read off
    the curve at the epoch whose weights the run ended with.
    """
    if objective != "val_loss":
        return float(metrics.get(objective, math.nan))
    if not val_loss:
        return math.nan
    epoch = best if restores_best and best >= 1 else len(val_loss)
    return float(val_loss[epoch - 1])


def build_trials(sweep: Sweep, reference_patience: int | None = None) -> Trials:
    """The ``Trials`` of ``sweep``: one row per trial run, ordered by trial number.

    ``reference_patience`` is the patience replayed on runs trained without early stopping;
    None = the median patience of the sweep's runs that had it, else the default config's.
    """
    params = {t.run.info.run_id: {k: parse_param(v) for k, v in t.run.data.params.items()} for t in sweep.trials}
    task = task_of(params.values(), (t.run.data.metrics for t in sweep.trials))
    val_error, test_error = f"val_{task.flattery}", f"test_{task.flattery}"
    if reference_patience is None:
        used = [p.get("train.early_stopping.patience") for p in params.values()]
        used = [p for p in used if isinstance(p, int)]
        reference_patience = int(np.median(used)) if used else _default_patience()

    rows, curves = [], {}
    for trial in sweep.trials:
        run, run_id = trial.run, trial.run.info.run_id
        p, metrics, tags = params[run_id], run.data.metrics, run.data.tags
        train_loss, val_loss = trial.curves.get("train_loss", []), trial.curves.get("val_loss", [])
        patience = p.get("train.early_stopping.patience")
        min_delta = float(p.get("train.early_stopping.min_delta") or 0.0) if patience is not None else 0.0
        state = _state(run)
        best = best_epoch(val_loss, min_delta) if val_loss else int(metrics.get("best_epoch", 0))
        epochs_run = len(val_loss) if val_loss else int(metrics.get("epochs_run", 0))
        configured = p.get("train.epochs")
        configured = int(configured) if isinstance(configured, int) else epochs_run
        saving, replayed = (math.nan, False)
        if state == COMPLETE:
            saving, replayed = early_stop_saving(configured, epochs_run, val_loss, patience,
                                                 reference_patience, min_delta)
        trial_tag = tags.get(TRIAL_TAG)
        restores_best = patience is not None and bool(p.get("train.early_stopping.restore_best"))
        row = {
            "trial": int(trial_tag) if trial_tag and trial_tag.isdigit() else None,
            "run_id": run_id,
            "state": state,
            "objective_value": _objective_value(_objective(p.get("objective"), task), metrics, val_loss, best,
                                                restores_best),
            **{name: metrics.get(name, math.nan) for name in task.final_metrics},
            "best_epoch": best,
            "epochs_run": epochs_run,
            "configured_epochs": configured,
            "overfit_epochs": epochs_run - best if best >= 1 else math.nan,
            "generalization_gap": generalization_gap(train_loss, val_loss, best),
            "val_test_gap": val_test_gap(metrics.get(val_error, math.nan), metrics.get(test_error, math.nan)),
            "patience": patience,
            "early_stopped": tags.get(TRAIN_STATUS_TAG) == "early_stopped"
            or (state == COMPLETE and patience is not None and epochs_run < configured),
            "early_stop_saving": saving,
            "early_stop_replayed": replayed,
            "train_seconds": metrics.get("train_seconds", math.nan),
            "train_status": tags.get(TRAIN_STATUS_TAG),
            "fail_reason": tags.get(FAIL_REASON_TAG),
        }
        for key, value in p.items():
            row.setdefault(key, value)
        rows.append(row)
        curves[run_id] = trial.curves

    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=list(columns(task)))
    frame["trial"] = frame["trial"].astype("Int64")
    frame["patience"] = frame["patience"].astype("Int64")
    frame = frame.sort_values(["trial", "run_id"], kind="stable", na_position="last").reset_index(drop=True)

    param_keys = [k for k in frame.columns if k not in columns(task)]
    knobs = [k for k in param_keys if not NOT_KNOBS.match(k) and _varies(frame[k])]
    objectives = frame["objective"].dropna().unique() if "objective" in frame else []
    objective = _objective(objectives[0] if len(objectives) else None, task)
    return Trials(
        frame=frame, curves=curves, params=params, knobs=knobs, objective=objective, maximize=maximized(objective),
        reference_patience=reference_patience, task=task,
        info={"sweep_id": sweep.run_id, "experiment": sweep.experiment_name, "single": sweep.single,
              "tracking_uri": sweep.tracking_uri, **{k: v for k, v in sweep.tags.items() if k.startswith("sweeper.")}},
    )


def _objective(logged: Any, task: Task) -> str:
    """The objective a run was logged with; none logged, or ``auto``, is the task's default."""
    return task.objective if logged is None or str(logged) == "auto" else str(logged)


def _varies(column: pd.Series) -> bool:
    values = {str(v) for v in column}
    return len(values) > 1


def _default_patience() -> int | None:
    from sweeper.report.source import default_config

    return default_config().train.early_stopping.patience
