"""The sweep's one check before its first trial (``hydra.sweeper.preflight``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from sweeper.app.job import CURVE_METRICS, SPLITS, _resolved, experiment_description, load_data
from sweeper.config import OBJECTIVES, for_task, objective_for, validate
from sweeper.errors import ConfigError


def preflight(cfg: DictConfig, objectives: list[str]) -> dict:
    """The sweep's one check before its first trial (``hydra.sweeper.preflight``).

    ``cfg`` is the config of the search space's fixed overrides. Every objective must be a
    metric a trial returns and not a test metric; the dataset must load and encode (every
    offending column in one DataError). Returns ``{"lines": the dataset's summary lines,
    "identity": what the study's trials are about, "description": the experiment's}``
    (identity: target, file name, SHA-256, columns; a study resumed on another target or file
    is refused).
    """
    from sweeper.train import CLASSIFICATION_METRICS, METRICS

    validate(cfg)
    resolved = _resolved(cfg)
    dataset = load_data(resolved)
    for_task(resolved, dataset.task, len(dataset.classes), dataset.stratified)  # output_activation
    names = CLASSIFICATION_METRICS if dataset.task == "classification" else METRICS
    produced = [f"{split}_{name}" for split in SPLITS for name in names] + list(CURVE_METRICS)
    objectives = [objective_for(str(cfg.objective), dataset.task) if name == "auto" else name for name in objectives]
    if len(objectives) == 1 and objectives[0] in OBJECTIVES:
        objective_for(objectives[0], dataset.task)  # a metric of the other task: one line naming it
    for name in objectives:
        if name.startswith("test_") and name in produced:
            raise ConfigError(
                f"hydra.sweeper.directions: {name!r} is a test metric; a sweep optimises "
                "validation metrics and keeps the test set for the final word"
            )
        if name not in produced:
            allowed = ", ".join(m for m in produced if not m.startswith("test_"))
            raise ConfigError(f"hydra.sweeper.directions: no trial produces {name!r}; allowed: {allowed}")
    identity = {"data.target": dataset.target, "data.path": Path(dataset.path).name,
                "data.sha256": dataset.sha256, "data.features": ",".join(dataset.preprocessor.features)}
    return {"lines": dataset.summary(), "identity": identity, "description": experiment_description(dataset.info()),
            "objectives": objectives}
