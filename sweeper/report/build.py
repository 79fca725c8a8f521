"""Writing a report: trials.csv, the PNG plots and report.html into a folder, the same files to
the sweep's parent run in MLflow, and the table printed on stdout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sweeper.report import findings, importance, plots
from sweeper.report.html import render
from sweeper.report.task import METRIC_NAMES
from sweeper.report.trials import Trials

#: Where the files go in the parent run's artifacts.
ARTIFACT_PATH = "report"

#: (file, caption); ``{loss}`` in a caption is what the task's curves are (``Task.loss``).
PLOTS = (
    ("top_curves.png", "Train (blue), validation (orange) and test (green) {loss} per epoch of the top trials; the "
                       "dashed line is the best validation epoch. Validation rising while train keeps falling is "
                       "overfitting; the space between the curves is the generalisation gap."),
    ("gap_vs_regularization.png", "Generalisation gap (validation − train {loss} at the best epoch) against each "
                                  "regularisation knob, coloured by activation. Points lower down generalise better; "
                                  "a knob marked 'not searched' was fixed in this sweep."),
    ("best_epoch.png", "Best validation epoch against the learning rate and the schedule. Points on the dotted line "
                       "were still improving when the epoch budget ran out; low points peaked early and then "
                       "overfitted or stalled."),
    ("importances.png", "Optuna's parameter importances, for the objective (left) and for the generalisation gap "
                        "(right): the sweep parent run's param_importances.png, measured on the sweep's study when "
                        "it ended."),
)


@dataclass
class Report:
    """What one report wrote."""

    trials: Trials
    folder: Path
    files: list[Path]
    table: str  # the stdout table
    findings: list[str]


def _fmt(value: Any, spec: str) -> str:
    if pd.isna(value):  # None, NaN, pd.NA
        return "–"
    return format(value, spec)


def display_table(trials: Trials, rows: pd.DataFrame, knobs: bool, state: bool = True) -> pd.DataFrame:
    """``rows`` as strings for reading: the objective, the task's score on validation and test
    (RMSE or accuracy), the gaps, the best epoch, how far validation loss rose after it, the saving;
    with ``knobs``, one ``params`` column of the searched knobs' values (``key=value``, one cell
    that wraps, so the table fits a narrow window); ``state`` False leaves the state column out."""
    out = pd.DataFrame(index=rows.index)
    out["trial"] = [_fmt(t, "d") if not pd.isna(t) else r[:8] for t, r in zip(rows["trial"], rows["run_id"])]
    if state:
        out["state"] = rows["state"]
    out[trials.objective] = [_fmt(v, ".5g") for v in rows["objective_value"]]
    val_score, test_score = f"val_{trials.task.score}", f"test_{trials.task.score}"
    if trials.objective != val_score:
        out[val_score] = [_fmt(v, ".5g") for v in rows[val_score]]
    out[test_score] = [_fmt(v, ".5g") for v in rows[test_score]]
    out["gap"] = [_fmt(v, ".3g") for v in rows["generalization_gap"]]
    out["val→test"] = [_fmt(v, "+.1%") for v in rows["val_test_gap"]]
    out["best/run"] = [f"{_fmt(b, 'd')}/{_fmt(e, 'd')}" for b, e in zip(rows["best_epoch"], rows["epochs_run"])]
    out["rise"] = [_fmt(v, "+.1%") for v in rows["val_loss_rise"]]
    out["saving"] = [_fmt(v, ".0%") for v in rows["early_stop_saving"]]
    if knobs:
        out["params"] = ["  ".join(f"{knob}={_param(trials.params[r][knob])}".replace(" ", "\u00a0")
                                   for knob in trials.knobs if knob in trials.params[r]) for r in rows["run_id"]]
    return out.reset_index(drop=True).astype(str)


def _param(value: Any) -> str:
    return format(value, ".4g") if isinstance(value, float) else str(value)


def stdout_table(trials: Trials, k: int) -> str:
    """The top-``k`` trials and a one-line count of the rest, for the terminal."""
    top = trials.top(k)
    lines = [f"{trials.info.get('experiment')}  {'run' if trials.info.get('single') else 'sweep'} "
             f"{trials.info.get('sweep_id')}: {len(trials.frame)} trials "
             f"({', '.join(f'{n} {s}' for s, n in trials.frame['state'].value_counts().items())})"]
    if top.empty:
        lines.append("no finished trial")
    else:
        task = trials.task  # val→test is named only when it compares another metric than the table shows (log loss)
        flattery = METRIC_NAMES[task.flattery]
        val_test = "" if task.flattery == task.score else f"val→test = (test − val) / val {flattery}; "
        lines.append(f"top {len(top)} by {trials.objective} (gap = val − train {task.loss} at the best epoch; "
                     f"{val_test}rise = how much val {task.loss} rose from the best epoch to the last; "
                     "saving = share of the epoch budget early stopping saved, – where it was off)")
        lines.append(display_table(trials, top, knobs=False).to_string(index=False))
    return "\n".join(lines)


def write_report(trials: Trials, folder: Path, k: int = 5) -> Report:
    """trials.csv, the plots, the sweep's importances (its parent's, see ``importance.download``)
    and report.html in ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "trials.csv"
    trials.frame.to_csv(csv, index=False)
    captions = [caption.format(loss=trials.task.loss) for _, caption in PLOTS]
    figures = (plots.top_curves(trials, k), plots.gap_vs_regularization(trials), plots.best_epoch_figure(trials))
    drawn = [plots.save(figure, folder / name) for figure, (name, _) in zip(figures, PLOTS)]
    importances_json, importances_png = folder / "importances.json", folder / PLOTS[3][0]
    no_importances = importance.download(trials.info, importances_json, importances_png)
    if no_importances is None:
        drawn.append(importances_png)
    sentences = findings.overall_findings(trials) + findings.knob_findings(trials)
    page = render(
        trials,
        display_table(trials, trials.top(k), knobs=True, state=False),
        display_table(trials, trials.frame, knobs=True),
        sentences,
        list(zip(drawn, captions)),
        no_importances,
    )
    html_path = folder / "report.html"
    html_path.write_text(page, encoding="utf-8")
    files = [csv, *drawn, *([importances_json] if no_importances is None else []), html_path]
    return Report(trials, folder, files, stdout_table(trials, k), sentences)


def log_to_mlflow(report: Report) -> None:
    """Upload the report's files to the parent run (or the single run), under ``report/``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=report.trials.info["tracking_uri"])
    for path in report.files:
        client.log_artifact(report.trials.info["sweep_id"], str(path), artifact_path=ARTIFACT_PATH)
