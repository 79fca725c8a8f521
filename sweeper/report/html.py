"""``report.html``: one self-contained page (images embedded as base64) with the findings, the
top trials, the plots, every trial, and how each column is computed, rendered from the Jinja2
template ``templates/report.html.j2`` (autoescaped: every value is text)."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from sweeper.report.findings import (MAX_KNOB_SENTENCES, MIN_EPOCH_RATIO, MIN_GAP_CHANGE, MIN_GROUP,
                                     MIN_OBJECTIVE_CHANGE, MIN_SELECTION_EXCESS)
from sweeper.report.task import Task
from sweeper.report.trials import Trials
from sweeper.tracking.tags import PRUNER_TAG, SAMPLER_TAG, STUDY_TAG

#: How each column is computed, shown at the end of the page (the docstrings in
#: ``sweeper.report.trials`` hold the same formulas); ``{loss_unit}``, ``{val_error}`` and
#: ``{test_error}`` are the task's (``formulas``).
FORMULAS = {
    "best_epoch": "Logged by the run: the epoch (from 1) of the lowest val_loss, as early stopping picks it "
                  "(an epoch improves when val_loss < best so far − min_delta).",
    "epochs_run": "Logged by the run: the epochs it trained.",
    "rise (val_loss_rise in trials.csv)":
        "(val_loss at epochs_run − val_loss at best_epoch) / val_loss at best_epoch: how much validation loss "
        "rose while the run trained past its best epoch (0 when the best was the last). The number of epochs "
        "past the best is not shown: with early stopping it is the patience, a setting.",
    "generalization_gap": "Logged by the run: val_loss − train_loss at the best epoch ({loss_unit}, without "
                          "penalties).",
    "val_test_gap": "({test_error} − {val_error}) / {val_error}: positive means the test error is that much worse "
                    "than validation promised. The fixed validation/test split gives every trial a share of it; "
                    "selection is said to flatter the best trial only when its gap exceeds the other finished "
                    f"trials' median by ≥ {MIN_SELECTION_EXCESS * 100:g} percentage points and by their "
                    "interquartile range.",
    "early_stop_saving": "(E − epochs_run) / E with E = train.epochs, for COMPLETE trials trained with early "
                         "stopping; empty where it was off.",
    "importances": "As the sweep's parent run logged them (param_importances.json and .png): Optuna's "
                   "get_param_importances (PED-ANOVA) on the sweep's own study, its COMPLETE trials and their "
                   "search distributions, when the sweep ended.",
    "findings": "Each searched knob splits the finished trials at its median (numbers) or by category; a split "
                f"is used when both groups have ≥ {MIN_GROUP} finished trials, and a sentence is written for an effect of "
                f"≥ {MIN_OBJECTIVE_CHANGE:.0%} on the objective, ≥ {MIN_GAP_CHANGE:.0%} on the gap, or "
                f"≥ {MIN_EPOCH_RATIO:g}× on the best epoch; the {MAX_KNOB_SENTENCES} largest are listed. Small groups "
                "are noisy: read the trial counts in brackets.",
}

def formulas(task: Task) -> dict[str, str]:
    """The glossary of ``task``'s report: ``FORMULAS`` filled in, then the task's own entries
    (for classification: the cross-entropy curves, accuracy and log loss)."""
    fill = {"loss_unit": task.loss_unit, "val_error": f"val_{task.flattery}", "test_error": f"test_{task.flattery}"}
    return {**{name: text.format(**fill) for name, text in FORMULAS.items()}, **task.glossary}


def _rows(frame: pd.DataFrame) -> dict[str, Any]:
    """A display table (strings) for the template: its columns, each column's class (``num`` or
    ``text``: a column mostly of numbers is right-aligned; ``wrap``: ``params``, the one whose cells
    wrap) and its rows of cells."""
    return {"columns": list(frame.columns),
            "align": {c: "wrap" if c == "params" else _align(frame[c]) for c in frame.columns},
            "cells": [list(row.items()) for _, row in frame.iterrows()]}


def _align(column: pd.Series) -> str:
    numeric = pd.to_numeric(column.str.rstrip("%").replace({"": None, "–": None}), errors="coerce")
    return "num" if numeric.notna().sum() >= max(1, column.ne("").sum() // 2) else "text"


def render(trials: Trials, top: pd.DataFrame, every: pd.DataFrame, findings: Sequence[str],
           plots: Sequence[tuple[Path, str]], no_importances: str | None = None) -> str:
    """The page as a string; ``top`` and ``every`` are display tables (strings), ``plots`` (png,
    caption); ``no_importances`` says why the sweep has no importances to show, if so."""
    from jinja2 import Environment, PackageLoader

    info = trials.info
    kind = "Run" if info.get("single") else "Sweep"
    environment = Environment(loader=PackageLoader("sweeper.report", "templates"), autoescape=True,
                              keep_trailing_newline=True)
    return environment.get_template("report.html.j2").render(
        title=f"{kind} report: {info.get('experiment', '')}",
        kind=kind,
        info=info,
        study=[(label, info[key]) for key, label in ((STUDY_TAG, "study"), (SAMPLER_TAG, "sampler"),
                                                     (PRUNER_TAG, "pruner")) if info.get(key)],
        objective=trials.objective,
        direction="maximised" if trials.maximize else "minimised",
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        findings=findings,
        top=_rows(top),
        figures=[{"src": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii"),
                  "caption": caption} for path, caption in plots],
        no_importances=no_importances,
        every=_rows(every),
        glossary=formulas(trials.task),
    )
