"""One row per trial: params, final metrics, state, and the overfitting / early-stopping columns.

What a run logged is read as it is (``best_epoch``, ``epochs_run``, ``generalization_gap``, the
objective's final metric; see ``sweeper.app``); the few columns derived here are arithmetic on
those and the curves (``val_loss_rise``, ``val_test_gap``, ``early_stop_saving``), with their
formulas below and in the report's HTML. Which final metrics a row has depends on the sweep's
task (``sweeper.report.task``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from sweeper.report.source import Sweep
from sweeper.report.task import REGRESSION, Task, maximized, task_of
from sweeper.tracking.tags import FAIL_REASON_TAG, SPACE_TAG, STATE_TAG, TRAIN_STATUS_TAG, TRIAL_TAG, final_metric

COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"

#: Params that say where a run was logged, not how it trained: never a searched knob.
NOT_KNOBS = re.compile(r"^(mlflow\.|data\.path$)")
#: Per-run numbers the app logs (SPEC's final metrics) that the report reads instead of deriving.
LOGGED_COUNTS = ("best_epoch", "epochs_run")
LOGGED = (*LOGGED_COUNTS, "generalization_gap")


def columns(task: Task = REGRESSION) -> tuple[str, ...]:
    """The columns every trials.csv of ``task`` has, in this order; the run's params (dotted keys) follow."""
    return ("trial", "run_id", "state", "objective_value", *task.final_metrics, "best_epoch", "epochs_run",
            "configured_epochs", "val_loss_rise", "generalization_gap", "val_test_gap", "patience", "early_stopped",
            "early_stop_saving", "train_seconds", "train_status", "fail_reason")


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
    info: dict[str, Any] = field(default_factory=dict)
    task: Task = REGRESSION

    @property
    def space(self) -> dict[str, dict[str, Any]]:
        """The searched numbers' ranges as the sweep's parent run tagged them (``sweeper.space``),
        ``{"optimizer.lr": {"low": 0.001, "high": 0.1, "log": True}}``; empty for a single run, or a
        sweep of an older sweeper."""
        return json.loads(self.info.get(SPACE_TAG) or "{}")

    @property
    def finished(self) -> pd.DataFrame:
        """COMPLETE trials: the ones with a finished curve, used by every statistic."""
        return self.frame[self.frame["state"] == COMPLETE]

    def top(self, k: int) -> pd.DataFrame:
        """The ``k`` best finished trials by the objective."""
        ranked = self.finished.dropna(subset=["objective_value"])
        return ranked.sort_values("objective_value", ascending=not self.maximize, kind="stable").head(k)


# --- the derived columns ----------------------------------------------------------------------


def early_stop_saving(configured_epochs: int, epochs_run: int | None, patience: int | None) -> float:
    """Fraction of the epoch budget early stopping saved: (E − epochs_run) / E, E = the configured
    ``train.epochs``. NaN when early stopping was off (it saved nothing it could be credited
    with) or the run did not log ``epochs_run``. Only meaningful for COMPLETE runs; the caller
    leaves it NaN for pruned and failed ones.
    """
    if patience is None or epochs_run is None or configured_epochs <= 0:
        return math.nan
    return (configured_epochs - epochs_run) / configured_epochs


def val_loss_rise(val_loss: list[float], best_epoch: int | None, epochs_run: int | None) -> float:
    """How much validation loss rose after the best epoch: (v[epochs_run] − v[best_epoch]) / v[best_epoch],
    v the ``val_loss`` curve (epochs from 1). 0 when the best epoch was the last; NaN when the run
    did not log ``best_epoch`` or ``epochs_run``, or the curve lacks either epoch's finite value.

    Unlike ``epochs_run − best_epoch`` (early stopping's patience, a setting), this measures
    overfitting: how much worse the network got on validation while it kept training.
    """
    if best_epoch is None or epochs_run is None or not 1 <= best_epoch <= epochs_run <= len(val_loss):
        return math.nan
    best, last = val_loss[best_epoch - 1], val_loss[epochs_run - 1]
    if not (math.isfinite(best) and math.isfinite(last)) or best <= 0:
        return math.nan
    return (last - best) / best


def val_test_gap(val_error: float, test_error: float) -> float:
    """How far validation flattered test: (test_error − val_error) / val_error, on the task's
    error-like metric (``Task.flattery``): test_rmse and val_rmse for regression, test_log_loss
    and val_log_loss for classification.

    Positive: the test error is that fraction above what validation promised; how much of it
    selection caused is ``findings.selection_excess``.
    """
    if not (math.isfinite(val_error) and math.isfinite(test_error)) or val_error == 0:
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


def _logged_int(metrics: dict, name: str) -> int | None:
    """A logged count (``best_epoch``, ``epochs_run``) as an int; None when the run did not log it."""
    value = metrics.get(name)
    return None if value is None or not math.isfinite(value) else int(value)


def build_trials(sweep: Sweep) -> Trials:
    """The ``Trials`` of ``sweep``: one row per trial run, ordered by trial number. A number a run
    did not log (an older sweeper) is an empty cell, never one made up here."""
    params = {t.run.info.run_id: {k: parse_param(v) for k, v in t.run.data.params.items()} for t in sweep.trials}
    task = task_of(params.values(), (t.run.data.metrics for t in sweep.trials))
    val_error, test_error = f"val_{task.flattery}", f"test_{task.flattery}"

    rows, curves = [], {}
    for trial in sweep.trials:
        run, run_id = trial.run, trial.run.info.run_id
        p, metrics, tags = params[run_id], run.data.metrics, run.data.tags
        patience = p.get("train.early_stopping.patience")
        state = tags.get(STATE_TAG) or _RUN_STATUS_TO_STATE.get(run.info.status, run.info.status)
        best, epochs_run = _logged_int(metrics, "best_epoch"), _logged_int(metrics, "epochs_run")
        configured = p.get("train.epochs")
        configured = int(configured) if isinstance(configured, int) else (epochs_run or 0)
        trial_tag = tags.get(TRIAL_TAG)
        row = {
            "trial": int(trial_tag) if trial_tag and trial_tag.isdigit() else None,
            "run_id": run_id,
            "state": state,
            "objective_value": final_metric(metrics, _objective(p.get("objective"), task)),
            **{name: final_metric(metrics, name) for name in task.final_metrics},
            "best_epoch": best,
            "epochs_run": epochs_run,
            "configured_epochs": configured,
            # A failed run's last loss is its divergence (inf stored as the largest float) or collapse, not overfitting.
            "val_loss_rise": math.nan if state == FAIL else val_loss_rise(trial.curves.get("val_loss", []), best,
                                                                          epochs_run),
            "generalization_gap": metrics.get("generalization_gap", math.nan),
            "val_test_gap": val_test_gap(metrics.get(val_error, math.nan), metrics.get(test_error, math.nan)),
            "patience": patience,
            "early_stopped": tags.get(TRAIN_STATUS_TAG) == "early_stopped",
            "early_stop_saving": early_stop_saving(configured, epochs_run, patience) if state == COMPLETE else math.nan,
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
    for name in ("trial", "patience", *LOGGED_COUNTS):
        frame[name] = frame[name].astype("Int64")
    frame = frame.sort_values(["trial", "run_id"], kind="stable", na_position="last").reset_index(drop=True)

    param_keys = [k for k in frame.columns if k not in columns(task)]
    knobs = [k for k in param_keys if not NOT_KNOBS.match(k) and len({str(v) for v in frame[k]}) > 1]
    objectives = frame["objective"].dropna().unique() if "objective" in frame else []
    objective = _objective(objectives[0] if len(objectives) else None, task)
    return Trials(
        frame=frame, curves=curves, params=params, knobs=knobs, objective=objective, maximize=maximized(objective),
        task=task,
        info={"sweep_id": sweep.run.info.run_id, "experiment": sweep.experiment_name, "single": sweep.single,
              "tracking_uri": sweep.tracking_uri,
              **{k: v for k, v in sweep.run.data.tags.items() if k.startswith("sweeper.")}},
    )


def _objective(logged: Any, task: Task) -> str:
    """The objective a run was logged with; none logged, or ``auto``, is the task's default."""
    return task.objective if logged is None or str(logged) == "auto" else str(logged)


def trial_name(row: Any) -> str:
    """``trial N`` for a trial row, ``run <first 8 characters of its id>`` for a run without a number."""
    return f"trial {row['trial']}" if not pd.isna(row["trial"]) else f"run {row['run_id'][:8]}"
