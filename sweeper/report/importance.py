"""A sweep's parameter importances: measured once, on its Optuna study, when the sweep ends.

The parent run (``sweeper.sweep.parent_run``) calls ``of_study`` and logs the answer as
``param_importances.json`` and its plot as ``param_importances.png``; the report reads both
back (``download``) and shows them as they are, so the parent and the report never disagree.
Optuna's PED-ANOVA evaluator ranks the knobs for the objective and, with ``target=``, for the
generalisation gap. It is named, not left to Optuna's default: before Optuna 5 the default was
fANOVA, which needs scikit-learn.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import warnings
from pathlib import Path
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
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    kept = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        gap = (t.user_attrs.get("metrics") or {}).get("generalization_gap")
        distributions = {k: d for k, d in t.distributions.items() if not d.single()}
        if gap is not None and math.isfinite(gap) and math.isfinite(t.values[0]):
            kept.append(optuna.trial.create_trial(
                params={k: t.params[k] for k in distributions}, distributions=distributions, value=t.values[0],
                user_attrs={"generalization_gap": float(gap)}))
    if len(kept) < MIN_TRIALS or not any(t.distributions for t in kept):
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    copy = optuna.create_study(direction="maximize" if study.directions[0] == StudyDirection.MAXIMIZE else "minimize")
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


def download(info: dict[str, Any], json_path: Path, png_path: Path) -> str | None:
    """Copy the sweep's logged importances (``JSON`` and ``PNG`` of its parent run) to
    ``json_path`` and ``png_path``; returns None, or why there are none (a single run; a parent
    that has not logged them: a sweep still running, or one from an older sweeper)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if info.get("single"):
        return f"run {info['sweep_id']} is a single run, not a sweep: importances rank a sweep's knobs."
    client = MlflowClient(tracking_uri=info["tracking_uri"])
    try:
        logged = {a.path for a in client.list_artifacts(info["sweep_id"])}
        if not {JSON, PNG} <= logged:
            return (f"the sweep's parent run has no {JSON} and {PNG}: it logs them when the sweep ends "
                    "(a sweep still running, or one run by an older sweeper, has none).")
        with tempfile.TemporaryDirectory(prefix="sweeper-report-") as tmp:
            values = json.loads(Path(client.download_artifacts(info["sweep_id"], JSON, tmp)).read_text())
            shutil.copyfile(client.download_artifacts(info["sweep_id"], PNG, tmp), png_path)
    except (MlflowException, OSError, ValueError) as error:
        return f"the parent run's {JSON} could not be read: {str(error).splitlines()[0] if str(error) else error!r}"
    json_path.write_text(json.dumps(values, indent=2) + "\n")
    return None
