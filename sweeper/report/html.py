"""``report.html``: one self-contained page (images embedded as base64) with the findings, the
top trials, the plots, every trial, and how each column is computed."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd

from sweeper.report.findings import MIN_GROUP
from sweeper.report.task import Task
from sweeper.tracking.tags import PRUNER_TAG, SAMPLER_TAG, STUDY_TAG
from sweeper.report.trials import Trials

#: How each column is computed, shown at the end of the page (the docstrings in
#: ``sweeper.report.trials`` hold the same formulas); ``{loss_unit}``, ``{val_error}`` and
#: ``{test_error}`` are the task's (``formulas``).
FORMULAS = {
    "best_epoch": "Logged by the run: the epoch (from 1) of the lowest val_loss, as early stopping picks it "
                  "(an epoch improves when val_loss < best so far − min_delta).",
    "epochs_run": "Logged by the run: the epochs it trained.",
    "overfit_epochs": "epochs_run − best_epoch: epochs trained after the best validation epoch.",
    "generalization_gap": "Logged by the run: val_loss − train_loss at the best epoch ({loss_unit}, without "
                          "penalties).",
    "val_test_gap": "({test_error} − {val_error}) / {val_error}: how far validation flattered test; positive means "
                    "the test error is that much worse than validation promised.",
    "early_stop_saving": "(E − epochs_run) / E with E = train.epochs, for COMPLETE trials trained with early "
                         "stopping; empty where it was off.",
    "importances": "Optuna's get_param_importances (PED-ANOVA) on an in-memory study rebuilt from the finished "
                   "trials' MLflow params; distributions are inferred from the values tried.",
    "findings": "Each searched knob splits the finished trials at its median (numbers) or by category; a split "
                f"is used when both groups have ≥ {MIN_GROUP} finished trials, and a sentence is written for an effect of "
                "≥ 5% on the objective, ≥ 20% on the gap, or ≥ 1.25× on the best epoch; the 10 largest are "
                "listed. Small groups are noisy: read the trial counts in brackets.",
}

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1d2433; margin: 0 auto;
       max-width: 1180px; padding: 24px 32px 64px; background: #fbfbfd; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 34px 0 10px; border-bottom: 1px solid #dde;
     padding-bottom: 4px; }
.meta { color: #556; font-size: 13.5px; margin: 0 0 8px; } code { font-size: 13px; background: #eef0f5;
        padding: 1px 4px; border-radius: 3px; }
ul.findings li { margin: 5px 0; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; background: white; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e4e6ee; text-align: right; white-space: nowrap; }
th { background: #eef0f5; position: sticky; top: 0; } td.text, th.text { text-align: left; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 18px 0 28px; } figure img { max-width: 100%; border: 1px solid #e4e6ee; background: white; }
figcaption { color: #445; font-size: 13.5px; margin-top: 4px; max-width: 980px; }
dl dt { font-weight: 600; margin-top: 8px; } dl dd { margin-left: 18px; color: #334; }
"""


def formulas(task: Task) -> dict[str, str]:
    """The glossary of ``task``'s report: ``FORMULAS`` filled in, then the task's own entries
    (for classification: the cross-entropy curves, accuracy and log loss)."""
    fill = {"loss_unit": task.loss_unit, "val_error": f"val_{task.flattery}", "test_error": f"test_{task.flattery}"}
    return {**{name: text.format(**fill) for name, text in FORMULAS.items()}, **task.glossary}


def _table(frame: pd.DataFrame) -> str:
    """A string DataFrame as an HTML table; columns of non-numbers are left-aligned."""
    head = "".join(f'<th class="{_align(frame[c])}">{html.escape(str(c))}</th>' for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = "".join(f'<td class="{_align(frame[c])}">{html.escape(str(v))}</td>' for c, v in row.items())
        body.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _align(column: pd.Series) -> str:
    numeric = pd.to_numeric(column.str.rstrip("%").replace({"": None, "–": None}), errors="coerce")
    return "num" if numeric.notna().sum() >= max(1, column.ne("").sum() // 2) else "text"


def _image(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render(trials: Trials, top: pd.DataFrame, every: pd.DataFrame, findings: Sequence[str],
           plots: Sequence[tuple[Path, str]], k: int) -> str:
    """The page as a string; ``top`` and ``every`` are display tables (strings), ``plots`` (png, caption)."""
    info = trials.info
    kind = "Run" if info.get("single") else "Sweep"
    title = f"{kind} report: {info.get('experiment', '')}"
    meta = [f"{kind.lower()} <code>{html.escape(info.get('sweep_id', ''))}</code>"]
    for key, label in ((STUDY_TAG, "study"), (SAMPLER_TAG, "sampler"), (PRUNER_TAG, "pruner")):
        if info.get(key):
            meta.append(f"{label} <code>{html.escape(info[key])}</code>")
    meta.append(f"objective <code>{html.escape(trials.objective)}</code> "
                f"({'maximised' if trials.maximize else 'minimised'})")
    meta.append(f"store <code>{html.escape(info.get('tracking_uri', ''))}</code>")
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figures = "".join(
        f'<figure><img src="{_image(path)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}'
        "</figcaption></figure>"
        for path, caption in plots
    )
    glossary = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>"
                       for name, text in formulas(trials.task).items())
    items = "".join(f"<li>{html.escape(s)}</li>" for s in findings) or "<li>No finding: too few finished trials.</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">{' · '.join(meta)}</p>
<p class="meta">generated {generated} by <code>python -m sweeper.report</code> from MLflow alone</p>
<h2>Findings</h2>
<ul class="findings">{items}</ul>
<h2>Top {min(k, len(top))} trials by {html.escape(trials.objective)}</h2>
{_table(top) if len(top) else '<p>No finished trial.</p>'}
<h2>Plots</h2>
{figures}
<h2>All {len(every)} trials</h2>
<details><summary>every trial with its state (pruned and failed trials included)</summary>{_table(every)}</details>
<h2>How the columns are computed</h2>
<dl>{glossary}</dl>
</body></html>
"""
