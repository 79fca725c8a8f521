"""The overfitting and early-stopping analysis of a sweep, from what MLflow already holds.

``python -m sweeper.report [--experiment NAME] [--sweep RUN_ID] [--top K] [--out DIR]`` writes
trials.csv, PNG plots and a self-contained report.html, logs them to the sweep's parent run, and
prints the top trials. In a notebook::

    from sweeper.report import load_trials
    trials = load_trials()                      # the latest sweep of the default experiment
    trials = load_trials("3f2a...", tracking_uri="sqlite:///mlruns/mlflow.db")

Modules: ``source`` (reading MLflow), ``task`` (regression or classification: which metrics
and labels), ``trials`` (the table: what each run logged, and a few ratios of it),
``importance`` (the sweep's Optuna importances: measured by its parent run, read back here),
``findings`` (sentences), ``plots``, ``html`` (with ``templates/report.html.j2``), ``build``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.report.build import Report


def load_trials(sweep_id: str | None = None, tracking_uri: str | None = None, *,
                experiment: str | None = None) -> "pd.DataFrame":
    """One row per trial of the sweep whose parent run is ``sweep_id`` (or one row for a plain run).

    ``sweep_id`` None = the latest sweep of ``experiment`` (default: the default config's, e.g.
    ``car_prices``); ``tracking_uri`` None resolves as ``python -m sweeper`` does. The columns
    are those of trials.csv: ``sweeper.report.trials.columns(task)`` (the final metrics are the
    sweep's task's: ``val_rmse``, ... or ``val_accuracy``, ...), then the params (dotted keys).
    Raises ``ReportError`` for an unknown store, experiment or run.
    """
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    return build_trials(load_sweep(tracking_uri, experiment=experiment, sweep_id=sweep_id)).frame


def build_report(sweep_id: str | None = None, tracking_uri: str | None = None, *, experiment: str | None = None,
                 top: int = 5, out: str | Path | None = None, log: bool = True) -> "Report":
    """Write the report (default folder ``reports/<sweep id>``) and, with ``log``, upload it to MLflow."""
    from sweeper.report.build import log_to_mlflow, write_report
    from sweeper.report.source import load_sweep
    from sweeper.report.trials import build_trials

    trials = build_trials(load_sweep(tracking_uri, experiment=experiment, sweep_id=sweep_id))
    folder = Path(out) if out is not None else Path("reports") / trials.info["sweep_id"]
    report = write_report(trials, folder, top)
    if log:
        log_to_mlflow(report)
    return report
