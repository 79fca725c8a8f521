"""Parameter importances from MLflow rows alone: an in-memory Optuna study rebuilt from the trials.

Each finished trial becomes ``optuna.trial.create_trial`` with its searched params and
distributions inferred from the values the sweep tried, so the report needs neither the Optuna
storage nor the original search space. Optuna's PED-ANOVA evaluator then ranks the knobs for the
objective and, with ``target=``, for the generalisation gap. It is named, not left to Optuna's
default: before Optuna 5 the default was fANOVA, which needs scikit-learn.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

from sweeper.report.trials import Trials

#: Fewer finished trials than this and importances are noise: none are computed.
MIN_TRIALS = 4


def infer_distribution(values: list[Any]) -> Any:
    """The Optuna distribution a knob's tried values suggest.

    Numbers (not bools) that look sampled from an interval -- more than 6 distinct values, or
    any float needing more than 8 significant digits (a hand-written ``choice`` never does) --
    -> Float/IntDistribution over [min, max] (log scale when all positive and spanning at least
    a decade). Anything else, e.g. ``choice(0.0, 1e-4, 1e-3)`` or ``choice(null, 2.0)``, -> a
    CategoricalDistribution over the distinct values as strings ('None' included).
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    sampled = any(isinstance(v, float) and float(f"{v:.8g}") != v for v in values)
    if numeric and (len(set(values)) > 6 or sampled):
        low, high = float(min(values)), float(max(values))
        if all(isinstance(v, int) for v in values):
            return IntDistribution(int(low), int(high))
        return FloatDistribution(low, high, log=low > 0 and high / low >= 10)
    return CategoricalDistribution(sorted({str(v) for v in values}))


def _study_of(rows: list[tuple[dict, dict, float, float]], maximize: bool) -> Any | None:
    """An in-memory study of ``rows`` = (params, their distributions, objective value, gap) — the
    one study every importance here is measured on. None with fewer than ``MIN_TRIALS`` rows or
    no parameter that varies."""
    import optuna

    rows = [r for r in rows if math.isfinite(r[2]) and math.isfinite(r[3])]
    if len(rows) < MIN_TRIALS or not any(not d.single() for _, dists, _, _ in rows for d in dists.values()):
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    for params, distributions, value, gap in rows:
        kept = {k: d for k, d in distributions.items() if not d.single()}
        study.add_trial(optuna.trial.create_trial(
            params={k: params[k] for k in kept}, distributions=kept, value=value,
            user_attrs={"generalization_gap": gap},
        ))
    return study


def rebuilt_study(trials: Trials) -> Any | None:
    """An in-memory study holding every finished trial's knobs, objective value and gap, from
    MLflow rows alone (distributions inferred by `infer_distribution`).

    A conditional knob a trial did not have (``schedule.gamma`` under a constant schedule) is
    left out of that trial, as Optuna would have. None when fewer than ``MIN_TRIALS`` finished
    trials have an objective value or nothing was searched.
    """
    from optuna.distributions import CategoricalDistribution

    finished = trials.finished.dropna(subset=["objective_value", "generalization_gap"])
    if len(finished) < MIN_TRIALS or not trials.knobs:
        return None
    params_of = [trials.params[run_id] for run_id in finished["run_id"]]
    distributions = {}
    for knob in trials.knobs:
        values = [row[knob] for row in params_of if knob in row]
        if values:
            distributions[knob] = infer_distribution(values)
    rows = []
    for (_, row), params in zip(finished.iterrows(), params_of):
        present = {k: d for k, d in distributions.items() if k in params}
        values = {k: str(params[k]) if isinstance(d, CategoricalDistribution) else params[k]
                  for k, d in present.items()}
        rows.append((values, present, float(row["objective_value"]), float(row["generalization_gap"])))
    return _study_of(rows, trials.maximize)


def _evaluate(study: Any | None, maximize: bool) -> dict[str, Any]:
    """PED-ANOVA importances of ``study`` for the objective and the gap, and how many of its
    trials have each parameter (a conditional one is judged on those: PED-ANOVA's regimes)."""
    import optuna

    result: dict[str, Any] = {"objective": {}, "generalization_gap": {}, "trials_with": {}, "trials": 0}
    if study is None:
        return result
    trials = study.get_trials(deepcopy=False)
    result["trials"] = len(trials)
    result["trials_with"] = {k: sum(k in t.params for t in trials) for k in sorted({k for t in trials for k in t.params})}
    # PED-ANOVA ranks knobs by what separates the best trials in the study's direction; a small
    # gap is the good end, so a maximising study (val_r2) gets the gap negated.
    sign = -1.0 if maximize else 1.0
    targets = {"objective": None, "generalization_gap": lambda t: sign * t.user_attrs["generalization_gap"]}
    for name, target in targets.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = optuna.importance.get_param_importances(
                    study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=target)
        except (ValueError, RuntimeError) as error:
            logging.getLogger(__name__).info("no %s importances: %s", name, error)
            continue
        if all(math.isfinite(v) for v in values.values()):
            result[name] = dict(values)
    return result


def of_study(study: Any, objectives: list[str]) -> dict[str, Any]:
    """Importances of a sweep's own Optuna study (its COMPLETE trials, their real distributions,
    the first objective and the logged gap): what the parent run logs as
    ``param_importances.json`` and draws, and what the report then shows too."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        gap = (t.user_attrs.get("metrics") or {}).get("generalization_gap")
        if gap is not None:
            rows.append((t.params, t.distributions, float(t.values[0]), float(gap)))
    maximize = study.directions[0] == StudyDirection.MAXIMIZE
    return _evaluate(_study_of(rows, maximize), maximize)


def importances(trials: Trials) -> dict[str, Any]:
    """``{"objective": {knob: importance}, "generalization_gap": {...}, "trials_with": {knob: n},
    "trials": n}``, each importance dict summing to 1; measured on the MLflow rows (a sweep
    whose parent has ``param_importances.json`` is shown from that instead, see build).

    Empty dicts when there are too few finished trials (see ``rebuilt_study``) or the
    evaluator cannot rank them.
    """
    return _evaluate(rebuilt_study(trials), trials.maximize)
