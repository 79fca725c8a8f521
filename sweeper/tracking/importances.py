"""A sweep's parameter importances: measured once, on its Optuna study, when the sweep ends.

The parent run (``sweeper.sweep.parent_run``) calls ``of_study`` and logs the answer as
``param_importances.json`` and its chart (``figure``) as ``param_importances.png``; the report
reads both back (``sweeper.report.importance.download``) and shows them as they are, so the
parent and the report never disagree.
Optuna's PED-ANOVA evaluator ranks the knobs for the objective and, with ``target=``, for the
generalisation gap. It is named, not left to Optuna's default: before Optuna 5 the default was
fANOVA, which needs scikit-learn.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

#: Fewer finished trials than this and importances are noise: none are computed.
MIN_TRIALS = 4
#: The parent run's artifacts: the values and their plot.
JSON, PNG = "param_importances.json", "param_importances.png"


def _measured_study(study: Any) -> Any | None:
    """An in-memory copy of ``study``'s COMPLETE trials that logged a finite gap, with their
    own distributions (single-valued ones left out), their first objective as the value and the
    gap as a user attribute. None with fewer than ``MIN_TRIALS`` such trials or nothing searched."""
    import optuna

    kept = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        gap = (t.user_attrs.get("metrics") or {}).get("generalization_gap")
        distributions = {k: d for k, d in t.distributions.items() if not d.single()}
        if gap is not None and math.isfinite(gap) and math.isfinite(t.values[0]):
            kept.append(optuna.trial.create_trial(
                params={k: t.params[k] for k in distributions}, distributions=distributions, value=t.values[0],
                user_attrs={"generalization_gap": float(gap)}))
    if len(kept) < MIN_TRIALS or not any(t.distributions for t in kept):
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    copy = optuna.create_study(directions=study.directions[:1])
    copy.add_trials(kept)
    return copy


def of_study(study: Any, objectives: list[str]) -> dict[str, Any]:
    """``{"objective": {knob: importance}, "generalization_gap": {...}, "trials_with": {knob: n},
    "trials": n}`` of a sweep's Optuna study: PED-ANOVA on its COMPLETE trials (their real
    distributions, the first objective, the gap each trial logged), each dict summing to 1.

    ``trials_with`` counts the trials having each knob: a conditional one (``schedule.gamma``)
    is judged on those, PED-ANOVA's regimes. Empty dicts with too few trials (``MIN_TRIALS``)
    or when the evaluator cannot rank them. ``objectives`` names the study's values (only the
    first is measured).
    """
    import optuna

    result: dict[str, Any] = {"objective": {}, "generalization_gap": {}, "trials_with": {}, "trials": 0}
    measured = _measured_study(study)
    if measured is None:
        return result
    trials = measured.get_trials(deepcopy=False)
    result["trials"] = len(trials)
    result["trials_with"] = {k: sum(k in t.params for t in trials) for k in sorted({k for t in trials for k in t.params})}
    # PED-ANOVA ranks knobs by what separates the best trials in the study's direction; a small
    # gap is the good end, so a maximising study (val_r2) gets the gap negated.
    sign = -1.0 if measured.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    targets = {"objective": None, "generalization_gap": lambda t: sign * t.user_attrs["generalization_gap"]}
    for name, target in targets.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = optuna.importance.get_param_importances(
                    measured, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=target)
        except (ValueError, RuntimeError) as error:
            logging.getLogger(__name__).info("no %s importances of %s: %s", name, objectives[0], error)
            continue
        if all(math.isfinite(v) for v in values.values()):
            result[name] = dict(values)
    return result


def figure(values: dict[str, Any], objective: str) -> Any:
    """Optuna's parameter importances for the objective and, separately, for the gap
    (``of_study``); a knob only some trials have is labelled "(n of N)". A laid-out matplotlib Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    knobs = set(values.get("objective", {})) | set(values.get("generalization_gap", {}))
    fig = Figure(figsize=(11, 0.9 + 0.42 * max(4, len(knobs))))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    titles = {"objective": f"for {objective}", "generalization_gap": "for the generalisation gap"}
    total, having = values.get("trials", 0), values.get("trials_with", {})

    def label(knob: str) -> str:
        n = having.get(knob, total)
        return knob if n >= total else f"{knob} ({n} of {total})"

    for ax, (name, title) in zip(axes, titles.items()):
        ranked = sorted(values.get(name, {}).items(), key=lambda kv: kv[1])
        ax.set_title(f"Importance {title}", fontsize=10)
        if not ranked:
            ax.text(0.5, 0.5, f"not computed: needs {MIN_TRIALS} finished trials\nand a searched knob",
                    ha="center", va="center", transform=ax.transAxes, color="grey", wrap=True)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        color = "tab:blue" if name == "objective" else "tab:purple"
        ax.barh([label(k) for k, _ in ranked], [v for _, v in ranked], color=color)
        for y, (_, v) in enumerate(ranked):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=8.5)
        ax.set_xlim(0, max(v for _, v in ranked) * 1.2 or 1)
        ax.set_xlabel("share of importance")
    fig.suptitle("Which knobs mattered (Optuna's PED-ANOVA importances on the finished trials; each panel sums to 1)",
                 fontsize=11, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # the top band holds the title
    return fig
