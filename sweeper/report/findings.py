"""Plain sentences computed from the trials table: what each searched knob did, and what early
stopping and the validation set did overall.

A knob's trials are split in two -- numbers at their median (``lr ≥ 0.01`` vs ``< 0.01``),
names by category (``tanh`` vs the rest) -- and a sentence compares the groups' medians of the
objective, the generalisation gap and the best epoch. A split is used only when both groups have
at least ``MIN_GROUP`` finished trials (fewer say more about the sampler than the knob), and a
sentence is written only for an effect of at least ``MIN_OBJECTIVE_CHANGE`` on the objective,
``MIN_GAP_CHANGE`` on the gap, or ``MIN_EPOCH_RATIO`` on the best epoch. When the gap changes sign
(or its baseline is not positive) a relative change means nothing, so the move must instead be at
least ``MIN_GAP_CHANGE`` of the sweep's median |gap|. At most ``MAX_KNOB_SENTENCES`` are kept,
largest effects first.

Overall, a sentence states only what was measured, never what a setting makes true: early
stopping's saving, how far validation loss rose after the best epoch (``val_loss_rise``), and
whether the best trial's test error is further from its validation error than the other trials'
(``selection_excess``): the split gives every trial a share of that gap, selection only the excess.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pandas as pd

from sweeper.report.task import METRIC_NAMES, maximized, metric_name
from sweeper.report.trials import FAIL, LOGGED, PRUNED, Trials, trial_name

MIN_GROUP = 5
#: Finished trials the sweep-wide statistics need (early stopping, validation vs test).
MIN_FINISHED = 2
MIN_OBJECTIVE_CHANGE = 0.05
MIN_GAP_CHANGE = 0.20
MIN_EPOCH_RATIO = 1.25
MAX_KNOB_SENTENCES = 10
#: The least excess of the best trial's val→test gap over the other trials' median (0.05 = 5
#: percentage points) for a sentence to say selection flattered it (``selection_excess``).
MIN_SELECTION_EXCESS = 0.05


def knob_splits(trials: Trials, knob: str) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """The splits of ``knob``'s finished trials (see the module docstring), each as (label, the
    group's rows, the rows of the others with the knob)."""
    finished = trials.finished
    present = [run_id in trials.params and knob in trials.params[run_id] for run_id in finished["run_id"]]
    rows = finished[np.asarray(present, dtype=bool)]  # a list would select columns when it is empty
    values = [trials.params[run_id][knob] for run_id in rows["run_id"]]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numeric and len(set(values)) >= 2:
        x = np.asarray(values, dtype=float)
        threshold = float(np.median(x))
        high, label = x >= threshold, f"{knob} ≥ {threshold:.3g}"
        if high.all():  # the median is the minimum (e.g. mostly zeros)
            high, label = x > threshold, f"{knob} > {threshold:.3g}"
        yield label, rows[high], rows[~high]
        return
    categories = sorted({str(v) for v in values})
    if len(categories) < 2:
        return
    names = np.asarray([str(v) for v in values])
    for category in categories[-1:] if len(categories) == 2 else categories:
        other = f" (vs {categories[0]})" if len(categories) == 2 else ""
        yield f"{knob} = {category}{other}", rows[names == category], rows[names != category]


def _relative(new: float, old: float) -> float:
    return (new - old) / abs(old) if old and math.isfinite(old) and math.isfinite(new) else math.nan


def _effect_sentences(label: str, g: pd.DataFrame, r: pd.DataFrame, trials: Trials, gap_scale: float,
                      min_group: int) -> list[tuple[float, str]]:
    """(effect size, sentence) pairs for one split (``label``: group ``g`` against the rest ``r``);
    empty when the effect is too small or a group has fewer than ``min_group`` finished trials."""
    if len(g) < min_group or len(r) < min_group:
        return []
    counts = f"({len(g)} vs {len(r)} finished trials)"
    out = []

    name = metric_name(trials.objective)
    obj_g, obj_r = g["objective_value"].median(), r["objective_value"].median()
    gap_g, gap_r = g["generalization_gap"].median(), r["generalization_gap"].median()
    obj_change = _relative(obj_g, obj_r)
    gap_change = _relative(gap_g, gap_r) if gap_r > 0 and gap_g > 0 else math.nan
    gap_moved = (math.isnan(gap_change) and math.isfinite(gap_g) and math.isfinite(gap_r)
                 and abs(gap_g - gap_r) >= MIN_GAP_CHANGE * gap_scale > 0)
    notable_obj = abs(obj_change) >= MIN_OBJECTIVE_CHANGE
    notable_gap = abs(gap_change) >= MIN_GAP_CHANGE if math.isfinite(gap_change) else gap_moved
    if notable_obj or notable_gap:
        better = (obj_change > 0) == trials.maximize
        parts = []
        if math.isfinite(obj_change):
            verb = "raised" if obj_change > 0 else "lowered"
            parts.append(f"{verb} the median {name} by {abs(obj_change):.0%} ({'better' if better else 'worse'})")
        if math.isfinite(gap_change):
            verb = "widening" if gap_change > 0 else "cutting"
            parts.append(f"{verb} the median generalisation gap by {abs(gap_change):.0%}")
        elif gap_moved:
            parts.append(f"moving the median generalisation gap from {gap_r:.3g} to {gap_g:.3g}")
        sentence = f"{label} " + " while ".join(parts) + f" {counts}."
        # Ranking only: a 20% move of the gap counts like a 5% move of the objective.
        size = max(abs(obj_change) if math.isfinite(obj_change) else 0,
                   abs(gap_change) / 4 if math.isfinite(gap_change) else 0)
        out.append((size, sentence))

    best_g, best_r = g["best_epoch"].median(), r["best_epoch"].median()
    if pd.notna(best_g) and pd.notna(best_r) and best_g > 0 and best_r > 0:
        ratio = best_r / best_g
        if max(ratio, 1 / ratio) >= MIN_EPOCH_RATIO:
            late = g if ratio < 1 else r
            if (late["best_epoch"] >= late["configured_epochs"]).mean() >= 0.5:
                # Most of the later group peaked at their last allowed epoch: the budget ran out.
                who = f"with {label}" if ratio < 1 else "without it"
                sentence = (f"Most trials {who} were still improving when the epoch budget "
                            f"({late['configured_epochs'].median():g}) ran out (median best epoch {best_g:g} vs "
                            f"{best_r:g}) {counts}.")
            else:
                pace = f"{ratio:.3g}× sooner" if ratio > 1 else f"{1 / ratio:.3g}× later"
                sentence = (f"Trials with {label} reached their best epoch {pace} "
                            f"(median epoch {best_g:g} vs {best_r:g}) {counts}.")
            out.append((abs(math.log(ratio)) / 2, sentence))
    return out


def knob_findings(trials: Trials, min_group: int = MIN_GROUP) -> list[str]:
    """One sentence per notable effect of a searched knob, the largest ``MAX_KNOB_SENTENCES`` first;
    a split counts only with ``min_group`` finished trials on each side."""
    gap_scale = float(trials.finished["generalization_gap"].abs().median()) if len(trials.finished) else 0.0
    gap_scale = gap_scale if math.isfinite(gap_scale) else 0.0
    found: list[tuple[float, str]] = []
    for knob in trials.knobs:
        for label, group, rest in knob_splits(trials, knob):
            found.extend(_effect_sentences(label, group, rest, trials, gap_scale, min_group))
    ranked = sorted(found, key=lambda pair: -pair[0])
    return [sentence for _, sentence in ranked[:MAX_KNOB_SENTENCES]]


def overall_findings(trials: Trials) -> list[str]:
    """Sentences about the whole sweep: states, the best trial, early stopping, validation vs test."""
    frame, finished = trials.frame, trials.finished
    states = frame["state"].value_counts()
    out = [f"{len(finished)} of {len(frame)} trials completed"
           + (f"; {states.get(PRUNED, 0)} pruned and {states.get(FAIL, 0)} failed (listed, left out of the statistics)."
              if len(finished) < len(frame) else ".")]
    top, name = trials.top(1), metric_name(trials.objective)
    if not top.empty:
        best = top.iloc[0]
        at = f" at epoch {best['best_epoch']} of {best['epochs_run']}" if pd.notna(best["best_epoch"]) else ""
        out.append(f"The best trial ({trial_name(best)}) reached {name} {best['objective_value']:.4g}{at}.")
        folds = trials.params.get(best["run_id"], {}).get("split.folds")
        if isinstance(folds, int) and folds > 1:
            out.append(f"It cross-validated over {folds} folds: its validation metrics are out-of-fold (each row "
                       f"predicted by the fold network that did not train on it), its curves the {folds} folds' means "
                       f"(the band: ± 1 sd over the folds) and its model the mean of its {folds} fold networks.")
    elif len(finished):
        out.append(f"No finished trial has a finite {name}: none is ranked.")
    missing = finished[list(LOGGED)].isna().sum()
    missing = missing[missing > 0]
    if not missing.empty:
        listed = ", ".join(f"{name} ({n} of {len(finished)})" for name, n in missing.items())
        out.append(f"Some finished runs did not log {listed}: their cells are empty and the statistics leave them "
                   "out (runs logged by an older sweeper).")
    if len(finished) < MIN_FINISHED:
        return out

    on = finished[finished["patience"].notna()].dropna(subset=["early_stop_saving"])
    if len(on):
        stopped = on[on["early_stopped"]]
        among = f" ({stopped['early_stop_saving'].median():.0%} among those it stopped)" if len(stopped) else ""
        out.append(f"Early stopping ended {len(stopped)} of {len(on)} finished trials early, saving a median "
                   f"{on['early_stop_saving'].median():.0%} of the epoch budget{among}.")
    counted = finished.dropna(subset=["best_epoch", "epochs_run"])
    past = counted["epochs_run"] - counted["best_epoch"]
    off = past[counted["patience"].isna()]
    if len(off):
        out.append(f"{len(off)} finished trials ran without early stopping; they trained a median "
                   f"{off.median():g} epochs past their best validation epoch.")
    if (past == 0).any():
        out.append(f"{int((past == 0).sum())} of {len(past)} finished trials were still improving on validation at "
                   "their last epoch: more epochs may help.")
    # Validation loss rising past the best epoch measures overfitting, over the trials that trained past it.
    rise = finished.dropna(subset=["val_loss_rise"])
    rise = rise[rise["best_epoch"] < rise["epochs_run"]]
    if not rise.empty:
        most = rise.loc[rise["val_loss_rise"].idxmax()]
        several = len(rise) > 1
        trained = f"{len(rise)} finished trial{'s' * several} that trained past {'their' if several else 'its'}"
        out.append(f"In the {trained} best epoch, validation loss rose a median {rise['val_loss_rise'].median():.1%} "
                   f"by the last epoch (the most: {trial_name(most)}, {most['val_loss_rise']:+.1%}).")
    if finished["val_test_gap"].notna().sum() >= MIN_FINISHED:
        out += _validation_vs_test(trials)
    return out


def selection_excess(selected: float, unselected: pd.Series) -> float | None:
    """How much selecting on validation flattered the selected trial: its ``val_test_gap`` minus the
    median gap of the finished trials not selected, when that excess is at least
    max(``MIN_SELECTION_EXCESS``, the unselected gaps' interquartile range); None otherwise.

    Every trial's gap holds the fixed validation/test split's part (the unselected trials, trial 0
    among them, show it); only the selected trial's excess over them comes from choosing it for a
    low validation error.
    """
    excess = selected - float(unselected.median())
    spread = float(unselected.quantile(0.75) - unselected.quantile(0.25))
    return excess if excess >= max(MIN_SELECTION_EXCESS, spread) else None


def _validation_vs_test(trials: Trials) -> list[str]:
    """Whether selection flattered the best trial on the task's error-like metric (``val_test_gap``:
    RMSE, log loss), against the other finished trials (``selection_excess``), and, when the table
    shows another score (accuracy), the score's medians on both."""
    task, finished = trials.task, trials.finished
    val_error, test_error = metric_name("val_" + task.flattery), metric_name("test_" + task.flattery)
    out = []
    best = trials.top(1)
    if not best.empty and pd.notna(best.iloc[0]["val_test_gap"]):
        selected = best.iloc[0]
        others = finished.loc[finished["run_id"] != selected["run_id"], "val_test_gap"].dropna()
        gap, reference = f"{selected['val_test_gap']:+.1%}", f"{others.median():+.1%}"
        others_are = f"the {len(others)} other finished trials' median is {reference}"
        if selection_excess(selected["val_test_gap"], others) is not None:
            out.append(f"Selecting on validation flattered the best trial ({trial_name(selected)}): its {test_error} "
                       f"is {gap} against its {val_error}, where {others_are}.")
        else:
            out.append(f"The best trial ({trial_name(selected)}) has its {test_error} {gap} against its {val_error}, "
                       f"and {others_are}: that gap comes with the validation/test split, not with selecting on "
                       "validation.")
    if task.score != task.flattery:
        scores = finished[[f"val_{task.score}", f"test_{task.score}"]].dropna()
        val, test = scores.iloc[:, 0], scores.iloc[:, 1]
        worse = int(((test < val) if maximized(f"val_{task.score}") else (test > val)).sum())
        if len(scores) >= MIN_FINISHED:
            out.append(f"On {METRIC_NAMES[task.score]}: a median {val.median():.4g} on validation and "
                       f"{test.median():.4g} on test ({worse} of {len(scores)} finished trials did worse on test).")
    return out
