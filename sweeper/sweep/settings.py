"""``hydra.sweeper.*``: the typed schema of the Optuna sweeper's settings.

Registered in Hydra's ConfigStore as ``hydra/sweeper/optuna_schema``; ``conf/hydra/sweeper/
optuna.yaml`` extends it with the defaults, so a misspelt key or a wrong type fails at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

SWEEPER_TARGET = "hydra_plugins.sweeper_optuna.optuna_sweeper.OptunaSweeper"
#: Set by the app's own config (conf/hydra/sweeper/optuna.yaml), not by a user: left out of the
#: keys an "unknown key" message lists.
INTERNAL = {"internal": True}


@dataclass
class OptunaSweeperConf:
    _target_: str = field(default=SWEEPER_TARGET, metadata=INTERNAL)
    #: Finished trials (COMPLETE + PRUNED + FAIL) the study holds when the sweep stops.
    n_trials: int = 30
    #: Seconds after which no new trial is started (null = no limit).
    timeout: Optional[float] = None
    #: Trials asked and launched together as one batch through the launcher.
    n_jobs: int = 1
    sampler: str = "tpe"
    sampler_kwargs: Dict[str, Any] = field(default_factory=dict)
    #: Seeds samplers that take a seed; a resumed study offsets it by the trials already asked.
    seed: Optional[int] = 0
    pruner: Optional[str] = "median"
    pruner_kwargs: Dict[str, Any] = field(default_factory=dict)
    storage: str = "sqlite:///mlruns/optuna.db"
    #: null = the MLflow experiment's name.
    study_name: Optional[str] = None
    #: minimize | maximize | null (inferred from the ``objective`` metric's name).
    direction: Optional[str] = None
    #: Metric names for a multi-objective study, e.g. [val_rmse, generalization_gap].
    directions: Optional[List[str]] = None
    #: Seconds between heartbeats of running trials; a trial silent for ``grace_period`` is FAIL.
    heartbeat_interval: int = 10
    grace_period: Optional[int] = None
    #: Dotted path of a function that checks a composed job config and raises
    #: ``sweeper.errors.SweeperError``; run on every value of the space before any trial.
    validator: Optional[str] = field(default=None, metadata=INTERNAL)
    #: Dotted path of a function ``(config, objectives) -> {"lines": [...], "identity": {...}}``
    #: run once on the config of the space's fixed overrides before the study or the parent run
    #: exists (the app loads its dataset there): the lines are logged, the identity is what the
    #: study must keep; it raises ``sweeper.errors.SweeperError`` to stop the sweep.
    preflight: Optional[str] = field(default=None, metadata=INTERNAL)
    #: Model Registry name: the best trial's model is registered under it (a new version) when
    #: the sweep ends; null = not registered (the model is still logged to the parent run).
    register_model: Optional[str] = None
    #: A new study's first trial is the base config (the values the space's keys have without
    #: the sweep, where the space allows them), so a sweep never ends worse than a plain run.
    start_from_defaults: bool = True
    #: The search space: config key -> Hydra sweep override (see conf/search/).
    params: Optional[Dict[str, Any]] = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_schema", node=OptunaSweeperConf, provider="sweeper"
)
