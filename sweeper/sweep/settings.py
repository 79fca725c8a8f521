"""``hydra.sweeper.*``: the typed schema of the Optuna sweeper's settings.

Registered in Hydra's ConfigStore as ``hydra/sweeper/optuna_schema``. It holds the keys and
their types only; every default, with what it means, is in ``conf/hydra/sweeper/optuna.yaml``,
which extends it, so a misspelt key or a wrong type fails at once and each default is written
once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from sweeper.errors import ConfigError

SWEEPER_TARGET = "hydra_plugins.sweeper_optuna.optuna_sweeper.OptunaSweeper"
#: Set by the app's own config (conf/hydra/sweeper/optuna.yaml), not by a user: left out of the
#: keys an "unknown key" message lists.
INTERNAL = {"internal": True}


@dataclass
class OptunaSweeperConf:
    _target_: str = field(default=SWEEPER_TARGET, metadata=INTERNAL)
    n_trials: int = MISSING
    timeout: Optional[float] = MISSING
    n_jobs: int = MISSING
    sampler: str = MISSING
    sampler_kwargs: Dict[str, Any] = MISSING
    seed: Optional[int] = MISSING
    pruner: Optional[str] = MISSING
    pruner_kwargs: Dict[str, Any] = MISSING
    storage: str = MISSING
    study_name: Optional[str] = MISSING
    direction: Optional[str] = MISSING
    directions: Optional[List[str]] = MISSING
    heartbeat_interval: int = MISSING
    grace_period: Optional[int] = MISSING
    #: Dotted path of a function that checks a composed job config and raises
    #: ``sweeper.errors.SweeperError``; run on every value of the space before any trial.
    validator: Optional[str] = field(default=MISSING, metadata=INTERNAL)
    #: Dotted path of a function ``(config, objectives) -> {"lines": [...], "identity": {...},
    #: "objectives": [...]}`` run once on the config of the space's fixed overrides before the
    #: study or the parent run exists (the app loads its dataset there).
    preflight: Optional[str] = field(default=MISSING, metadata=INTERNAL)
    register_model: Optional[str] = MISSING
    start_from_defaults: bool = MISSING
    params: Optional[Dict[str, Any]] = MISSING


#: ``hydra.sweeper.*`` numbers: (key, allowed, ok). Their types are checked by Hydra already.
_SETTING_RANGES = (
    ("n_trials", ">= 1", lambda v: v is not None and v >= 1),
    ("n_jobs", ">= 1", lambda v: v >= 1),
    ("timeout", "> 0 seconds or null", lambda v: v is None or v > 0),
    ("seed", "an integer in [0, 2**32 - 1] or null", lambda v: v is None or 0 <= v < 2**32),
    ("heartbeat_interval", ">= 1 second", lambda v: v >= 1),
    ("grace_period", ">= 1 second or null", lambda v: v is None or v >= 1),
)


def check_settings(settings: DictConfig) -> None:
    """Refuse a ``hydra.sweeper`` key the schema lacks (``+hydra.sweeper.nope=1`` adds one) or a
    number out of range before anything is opened or created."""
    from sweeper.errors import user_keys

    known = {f.name for f in dataclasses.fields(OptunaSweeperConf)}
    unknown = [key for key in settings if key not in known]
    if unknown:
        raise ConfigError(f"hydra.sweeper.{unknown[0]}: unknown key; allowed: {', '.join(user_keys(OptunaSweeperConf))}")
    for key, allowed, ok in _SETTING_RANGES:
        if not ok(settings[key]):
            raise ConfigError(f"hydra.sweeper.{key}={settings[key]}; must be {allowed}")


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_schema", node=OptunaSweeperConf, provider="sweeper"
)
