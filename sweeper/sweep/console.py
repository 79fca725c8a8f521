"""What a sweep prints: one line per finished trial, and a short summary at the end.

A trial's line says its number, state, objective (or where it was pruned, or why it failed),
the best so far, how long it took, how many trials of the budget are done and an ETA (the
median time of the trials finished here × the trials left ÷ jobs at once)::

    trial 12 COMPLETE  val_rmse=2160.6  best 2160.6 (#12)  0.5s  13/30 done  ETA 0:07

Hydra's launcher lines ("Launching 1 jobs locally", each job's overrides with the trial's
identity) and Optuna's own log lines are for ``hydra.verbose=true`` only.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from typing import Any, Iterator, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper.sweep.study import FINISHED, METRICS, RUN_ID
from sweeper.tracking import quiet_logger

#: How many trials the summary's table lists.
TOP = 5


def duration(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta(durations: Sequence[float], remaining: int, n_jobs: int) -> str:
    """``ETA m:ss`` from the median of ``durations`` (seconds), or "" before any."""
    if not durations or remaining <= 0:
        return ""
    return "ETA " + duration(statistics.median(durations) * math.ceil(remaining / max(1, n_jobs)))


def progress_line(number: int, state: TrialState, shown: str, best: str, took: float, finished: int,
                  n_trials: int, eta_text: str) -> str:
    """One finished trial (see the module docstring); ``shown``: its value, pruned epoch or reason."""
    parts = [f"trial {number} {state.name}", shown, best, f"{took:.1f}s", f"{finished}/{n_trials} done", eta_text]
    return "  ".join(part for part in parts if part)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value).replace(" ", "")


def top_table(trials: Sequence[FrozenTrial], objectives: Sequence[str], k: int = TOP) -> list[str]:
    """The ``k`` given trials (best first) as aligned rows: number, objective values, and the
    parameters whose values differ among them (those all share say nothing)."""
    trials = list(trials)[:k]
    if not trials:
        return []
    keys = sorted({key for t in trials for key in t.params})
    differ = [key for key in keys if len({_value(t.params.get(key, "-")) for t in trials}) > 1]
    last = [key.rsplit(".", 1)[-1] for key in differ]  # optimizer.lr -> lr, unless two keys share it
    header = ["#", *objectives, *(short if last.count(short) == 1 else key for key, short in zip(differ, last))]
    rows = [[str(t.number), *(f"{v:.6g}" for v in t.values), *(_value(t.params.get(key, "-")) for key in differ)]
            for t in trials]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(cell.rjust(w) if i < 1 + len(objectives) else cell.ljust(w)
                             for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
            for row in [header, *rows]]


@contextlib.contextmanager
def quiet_launcher(launcher: Any, verbose: bool) -> Iterator[None]:
    """Hold back the launcher's INFO lines unless ``verbose``: the loggers of the modules its
    class and its bases come from (a plugin's package; a module of ``sweeper``), at WARNING."""
    if verbose:
        yield
        return
    with contextlib.ExitStack() as stack:
        for cls in type(launcher).__mro__:
            module = cls.__module__
            if module.startswith("sweeper."):
                stack.enter_context(quiet_logger(module))
            elif module.startswith("hydra_plugins."):
                stack.enter_context(quiet_logger(module.rsplit(".", 1)[0]))
        yield


#: A validation split of fewer rows than this is small: the summary weighs the winner's margin.
NOISY_VAL_ROWS = 200


def noise_line(study: optuna.Study, objective: str, best: FrozenTrial) -> str | None:
    """How the best trial's margin over trial 0 (the defaults) compares with the noise of its
    objective: trial 0's standard deviation over its folds (``<objective>_std``, cross-validated),
    or, for one validation split of fewer than `NOISY_VAL_ROWS` rows, that it cannot be told
    apart; None when the best is trial 0, trial 0 did not complete, or nothing is known."""
    first = next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.number == 0), None)
    if first is None or best.number == 0 or first.value is None:
        return None
    metrics = first.user_attrs.get(METRICS) or {}
    margin = abs(first.value - best.value)
    said = f"trial #{best.number} beats trial 0 (the defaults) by {margin:.4g} {objective}"
    if f"{objective}_std" in metrics:
        spread = metrics[f"{objective}_std"]
        verdict = "within that spread: the pick may be noise" if margin <= spread else "beyond that spread"
        return f"noise: {said}; trial 0's {objective} varies by {spread:.4g} (sd) over its folds: {verdict}"
    rows = metrics.get("val_rows")
    if rows is not None and rows < NOISY_VAL_ROWS:
        return (f"noise: {said} on {rows:.0f} validation rows, too few to tell it from noise; "
                "cross-validate with split.folds=5")
    return None


#: The test metric a summary shows beside the objective (``, test_accuracy=0.961``), unless it is
#: an objective: what the best trial scores on rows neither training nor the search saw.
HELD_OUT = ("test_accuracy", "test_rmse")


def summary(
    study: optuna.Study, objectives: Sequence[str], best: Sequence[FrozenTrial], seconds: float,
    model_lines: Sequence[str], parent_run_id: str, ui: tuple[str | None, str, str], dashboard: str, store: str,
) -> list[str]:
    """The lines a sweep ends with: counts, the best trial(s) with their held-out score, the top
    trials, where the model is, and what shows more (``ui``: `sweeper.tracking.store.ui_links` of
    the parent run, ``dashboard``: optuna-dashboard's storage argument, ``store``: the report's
    ``--tracking-uri`` option or empty)."""
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s.name}" for s in FINISHED)
    lines = [f"sweep '{study.study_name}': {counts} in {duration(seconds)}"]
    if not best:
        lines.append("no trial completed")
    for t in best[:TOP]:
        values = ", ".join(f"{m}={v:.6g}" for m, v in zip(objectives, t.values))
        metrics = t.user_attrs.get(METRICS) or {}
        values += next((f", {n}={metrics[n]:.6g}" for n in HELD_OUT if n in metrics and n not in objectives), "")
        lines.append(f"{'best' if len(objectives) == 1 else 'pareto'} trial #{t.number}: {values}  "
                     f"(MLflow run {t.user_attrs.get(RUN_ID)})")
    if len(objectives) == 1 and best:
        lines.append("  " + " ".join(f"{k}={v}" for k, v in best[0].params.items()))
        sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        top = top_table(sorted(complete, key=lambda t: (sign * t.value, t.number)), objectives)
        if len(top) > 2:  # the top trials and the parameters that differ among them
            lines.extend(top)
        noise = noise_line(study, objectives[0], best[0])
        if noise:
            lines.append(noise)
    lines.extend(model_lines)
    command, runs, parent = ui
    if command:
        lines.append(f"MLflow UI:  {command}   then open")
    lines.append(f"{'' if command else 'MLflow UI:':12}{runs}")
    lines.append(f"the sweep:  {parent}   (MLflow parent run)")
    lines.append(f"dashboard:  optuna-dashboard {dashboard}   (pip install optuna-dashboard)")
    lines.append(f"report:     python -m sweeper.report --sweep {parent_run_id}{store}")
    return lines
