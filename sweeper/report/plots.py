"""The report's PNG plots (matplotlib, Agg). Each function draws one figure (``save`` writes it) and
never fails for lack of data: a plot without enough finished trials says so on its canvas.

A knob the sweep searched as a number (an interval or an integer range: ``Trials.space``, the
parent run's ``sweeper.space`` tag) is drawn on a numeric axis over its searched range, log-scaled
when it was searched on a log scale. A knob without one (a choice, a sweep of an older sweeper)
is drawn on a numeric axis when its values are numbers with more than 6 distinct levels
(log-scaled when positive and spanning a decade), else as evenly spaced categories (numbers to 3
significant digits) with a little horizontal jitter so equal values stay visible.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from sweeper.report.trials import Trials, trial_name

#: The regularisation knobs drawn against the gap (SPEC's config keys).
REGULARIZATION = ("regularization.l1", "regularization.l2", "regularization.dropout", "regularization.max_norm")
CURVE_STYLE = (("train_loss", "train", "tab:blue"), ("val_loss", "validation", "tab:orange"),
               ("test_loss", "test", "tab:green"))
COLOR_BY = "model.activation"
DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lay_out(fig: Any) -> Any:
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # the top band holds the title and the legend
    return fig


def save(fig: Any, path: Path) -> Path:
    """``fig`` as a PNG at ``path``; the figure is closed."""
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _knob_values(trials: Trials, rows: pd.DataFrame, knob: str) -> list[Any]:
    """The knob's value in each row; 'absent' for a conditional knob a trial did not have."""
    return [trials.params.get(run_id, {}).get(knob, "absent") for run_id in rows["run_id"]]


def _place(ax: Any, values: Sequence[Any], searched: dict[str, Any] | None = None, seed: int = 0) -> np.ndarray:
    """x positions for ``values`` on ``ax`` (numeric or categorical axis, see the module docstring);
    ``searched``: the knob's searched range (``{"low", "high", "log"}``), if it was a number."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and (searched is not None or len(set(values)) > 6):
        x = np.asarray(values, dtype=float)
        log = searched["log"] if searched is not None else bool(x.min() > 0 and x.max() / x.min() >= 10)
        if log:
            ax.set_xscale("log")
        if searched is not None:
            low, high = searched["low"], searched["high"]
            margin = (high - low) / 20
            ax.set_xlim((low / 1.25, high * 1.25) if log else (low - margin, high + margin))
        return x
    labels = sorted({_label(v) for v in values}, key=lambda s: (_as_number(s) is None, _as_number(s) or 0, s))
    index = {label: i for i, label in enumerate(labels)}
    ax.set_xticks(range(len(labels)))
    long = max(map(len, labels)) > 6
    ax.set_xticklabels(labels, rotation=30 if long else 0, ha="right" if long else "center")
    ax.set_xlim(-0.6, len(labels) - 0.4)
    jitter = np.random.default_rng(seed).uniform(-0.15, 0.15, len(values))
    return np.asarray([index[_label(v)] for v in values], dtype=float) + jitter


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _label(value: Any) -> str:
    """A category's tick label: a float to 3 significant digits, None as "none"."""
    return format(value, ".3g") if isinstance(value, float) else "none" if value is None else str(value)


def _knob_panels(trials: Trials, axes: Sequence[Any], knobs: Sequence[str], rows: pd.DataFrame,
                 column: str) -> Iterator[Any]:
    """One panel per knob: ``rows[column]`` against the knob's values, coloured by ``COLOR_BY``;
    yields each panel drawn, for the caller's y axis ("no finished trials" on every panel without rows)."""
    groups = [str(g) for g in _knob_values(trials, rows, COLOR_BY)]
    names = sorted({str(v) for v in _knob_values(trials, trials.finished, COLOR_BY)})
    cmap = _pyplot().get_cmap("tab10")
    for ax, knob in zip(axes, knobs):
        ax.set_title(knob + ("" if knob in trials.knobs else "  (not searched)"), fontsize=10)
        if rows.empty:
            _empty(ax, "no finished trials")
            continue
        x, y = _place(ax, _knob_values(trials, rows, knob), trials.space.get(knob)), np.asarray(rows[column])
        for i, name in enumerate(names):
            mask = np.asarray([g == name for g in groups])
            if mask.any():
                ax.scatter(x[mask], y[mask], s=36, color=cmap(i % 10), alpha=0.85, edgecolor="white",
                           linewidth=0.5, label=name)
        ax.grid(True, alpha=0.3)
        yield ax


def _legend(fig: Any, axes: Sequence[Any], title: str) -> None:
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), title=title or None, title_fontsize=9,
                   loc="upper right", bbox_to_anchor=(0.995, 0.995), ncol=len(handles), fontsize=9, frameon=False)


def top_curves(trials: Trials, k: int) -> Any:
    """Train, validation and test loss per epoch of the top-``k`` trials, one panel each (a
    cross-validated trial's: the fold means, validation ± 1 sd over the folds); the y axis
    names the task's loss (``Task.loss``, e.g. cross-entropy) and its scale: a laid-out Figure."""
    plt = _pyplot()
    top = trials.top(k)
    if top.empty:  # nothing finished (e.g. a single failed run): show what has a curve
        top = trials.frame[[bool(trials.curves.get(r, {}).get("val_loss")) for r in trials.frame["run_id"]]].head(k)
    n = max(len(top), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    # One y scale for every panel (shared limits, log for all or none), so panels compare.
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows + 0.6), squeeze=False, sharey=True)
    flat = axes.ravel()
    if top.empty:
        _empty(flat[0], "no trial has a loss curve")
    finite = []
    for ax, (rank, (_, row)) in zip(flat, enumerate(top.iterrows(), start=1)):
        curves = trials.curves.get(row["run_id"], {})
        for key, label, color in CURVE_STYLE:
            values = np.asarray(curves.get(key, []), dtype=float)
            if values.size:
                ax.plot(np.arange(1, values.size + 1), values, label=label, color=color, linewidth=1.4)
                finite.append(values[np.isfinite(values) & (values > 0)])
        spread = np.asarray(curves.get("val_loss_std", []), dtype=float)
        mean = np.asarray(curves.get("val_loss", []), dtype=float)
        if spread.size and spread.size == mean.size:  # cross-validated: validation ± 1 sd over the folds
            ax.fill_between(np.arange(1, mean.size + 1), np.maximum(mean - spread, 0.01 * mean), mean + spread,
                            color="tab:orange", alpha=0.2, linewidth=0, label="validation ± 1 sd over folds")
        if pd.notna(row["best_epoch"]) and row["best_epoch"] >= 1:
            ax.axvline(row["best_epoch"], color="grey", linestyle="--", linewidth=1, label="best epoch")
        ax.set_title(f"#{rank}  {trial_name(row)}: {trials.objective} {row['objective_value']:.4g}\n"
                     f"gap {row['generalization_gap']:.2g}, best epoch {row['best_epoch']}/{row['epochs_run']}",
                     fontsize=9.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{trials.task.loss} ({trials.task.loss_unit})")
        ax.grid(True, which="both", alpha=0.3)
    finite_values = np.concatenate(finite) if finite else np.empty(0)
    if finite_values.size and finite_values.max() > 10 * finite_values.min():
        for ax in flat:
            ax.set_yscale("log")
    for ax in flat[len(top):]:
        ax.set_visible(bool(top.empty) and ax is flat[0])
    _legend(fig, flat[:1], "")
    fig.suptitle(f"Top {len(top)} trials by {trials.objective}: {trials.task.loss} per epoch", fontsize=11,
                 x=0.02, ha="left")
    return _lay_out(fig)


def gap_vs_regularization(trials: Trials) -> Any:
    """Generalisation gap against L1, L2, dropout and max-norm, one panel each, coloured by activation:
    a laid-out Figure."""
    finished = trials.finished.dropna(subset=["generalization_gap"])
    fig, axes = _pyplot().subplots(2, 2, figsize=(10, 7.2))
    for ax in _knob_panels(trials, axes.ravel(), REGULARIZATION, finished, "generalization_gap"):
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_ylabel(f"generalisation gap (val − train {trials.task.loss})")
    _legend(fig, axes.ravel(), COLOR_BY)
    fig.suptitle("Generalisation gap at the best epoch against each regularisation knob", fontsize=11,
                 x=0.02, ha="left")
    return _lay_out(fig)


def best_epoch_figure(trials: Trials) -> Any:
    """Best validation epoch against ``optimizer.lr`` (on a number axis, log-scaled when searched so)
    and against the schedule, coloured by activation: a laid-out matplotlib Figure."""
    finished = trials.finished[trials.finished["best_epoch"].fillna(0) >= 1]
    fig, axes = _pyplot().subplots(1, 2, figsize=(11, 4.4))
    for ax in _knob_panels(trials, axes, ("optimizer.lr", "schedule.name"), finished, "best_epoch"):
        ax.set_ylabel("best epoch")
        ax.set_ylim(0, max(finished["configured_epochs"].max(), finished["best_epoch"].max()) * 1.05 + 1)
        ax.axhline(finished["configured_epochs"].max(), color="grey", linestyle=":", linewidth=1)
    _legend(fig, axes, COLOR_BY)
    fig.suptitle("When each trial peaked on validation (dotted: the epoch budget)", fontsize=11, x=0.02, ha="left")
    return _lay_out(fig)
