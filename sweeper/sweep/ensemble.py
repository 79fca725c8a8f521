"""``hydra.sweeper.ensemble=N``: the sweep's model is the mean of its top N trials' models."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweeper.sweep import study as study_attrs


def members(study: optuna.Study, best: optuna.trial.FrozenTrial, n: int) -> list[tuple[str, int]]:
    """``(MLflow run id, trial number)`` of the top ``n`` complete trials of a single-objective
    ``study`` by their objective: ``best`` first (also on a tie), then the next best (fewer when
    fewer completed)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.user_attrs.get(study_attrs.RUN_ID) and t.value is not None and t.number != best.number]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    complete.sort(key=lambda t: (-t.value if maximize else t.value, t.number))
    return [(str(t.user_attrs[study_attrs.RUN_ID]), t.number) for t in [best, *complete][:n]]


def test_metrics(model_npz: Path, config_yaml: Path) -> dict[str, float]:
    """The ensemble's metrics on the test rows of the run whose resolved ``config.yaml`` is
    given (the best trial's): ``test_{rmse,mae,r2}`` in original units, or a classifier's
    ``test_{accuracy,log_loss,f1_macro,roc_auc}`` on the members' mean probabilities. The raw
    test rows are read from the CSV again, so each member applies its own preprocessing."""
    from omegaconf import OmegaConf

    from sweeper.config import load_data
    from sweeper.data import read_csv
    from sweeper.tracking.model_file import load_members, predict_members, predict_proba_members
    from sweeper.train import classification_metrics, regression_metrics

    dataset = load_data(OmegaConf.load(config_yaml))
    dialect = dataset.dialect
    frame = read_csv(dataset.path, sep=dialect.get("sep"), encoding=dialect.get("encoding"),
                     na_values=dialect.get("na_values", ())).iloc[dataset.indices["test"]]
    models = load_members(model_npz)
    if dataset.task == "classification":
        found = classification_metrics(dataset.codes("test"), predict_proba_members(models, frame))
    else:
        found = regression_metrics(dataset.preprocessor.inverse_target(dataset.y_test)[:, 0],
                                   predict_members(models, frame))
    return {f"test_{name}": value for name, value in found.items()}
