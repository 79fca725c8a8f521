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


def rebuilt_study(trials: Trials) -> Any | None:
    """An in-memory study holding every finished trial's knobs, objective value and gap.

    A conditional knob a trial did not have (``schedule.gamma`` under a constant schedule) is
    left out of that trial, as Optuna would have. The gap is kept as the user attr
    ``generalization_gap`` for ``target=``. None when fewer than ``MIN_TRIALS`` finished trials
    have an objective value or nothing was searched.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution

    finished = trials.finished.dropna(subset=["objective_value", "generalization_gap"])
    if len(finished) < MIN_TRIALS or not trials.knobs:
        return None
    rows = [trials.params[run_id] for run_id in finished["run_id"]]
    distributions = {}
    for knob in trials.knobs:
        values = [row[knob] for row in rows if knob in row]
        if values:
            distribution = infer_distribution(values)
            if not distribution.single():
                distributions[knob] = distribution
    if not distributions:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if trials.maximize else "minimize")
    for (_, row), params in zip(finished.iterrows(), rows):
        present = {k: d for k, d in distributions.items() if k in params}
        values = {k: str(params[k]) if isinstance(d, CategoricalDistribution) else params[k]
                  for k, d in present.items()}
        study.add_trial(optuna.trial.create_trial(
            params=values, distributions=present, value=float(row["objective_value"]),
            user_attrs={"generalization_gap": float(row["generalization_gap"])},
        ))
    return study


def importances(trials: Trials) -> dict[str, dict[str, float]]:
    """``{"objective": {knob: importance}, "generalization_gap": {...}}``, each summing to 1.

    Empty dicts when there are too few finished trials (see ``rebuilt_study``) or the
    evaluator cannot rank them.
    """
    import optuna

    study = rebuilt_study(trials)
    result: dict[str, dict[str, float]] = {"objective": {}, "generalization_gap": {}}
    if study is None:
        return result
    # PED-ANOVA ranks knobs by what separates the best trials in the study's direction; a small
    # gap is the good end, so a maximising study (val_r2) gets the gap negated.
    sign = -1.0 if trials.maximize else 1.0
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
