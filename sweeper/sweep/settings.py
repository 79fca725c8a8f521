"""``hydra.sweeper.*``: the Optuna sweeper's settings, typed once.

:class:`OptunaSweeperConf` is their schema (keys and types only, in Hydra's ConfigStore as
``hydra/sweeper/optuna_schema``); every default, with what it means, is in
``conf/hydra/sweeper/optuna.yaml``, which extends it. :meth:`Settings.parse` turns the composed
node into one frozen object, checked before anything is opened; the sweeper reads only that.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

from hydra.core.config_store import ConfigStore
from hydra.utils import get_method
from omegaconf import MISSING, DictConfig, OmegaConf

from sweeper.errors import ConfigError, one_line, user_keys

if TYPE_CHECKING:  # Hydra imports this module to print --help: Optuna only when a sweep runs
    import optuna

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
    ensemble: int = MISSING
    params: Optional[Dict[str, Any]] = MISSING


#: ``hydra.sweeper.*`` numbers: (key, allowed, ok). Their types are checked by Hydra already.
_SETTING_RANGES = (
    ("n_trials", ">= 1", lambda v: v is not None and v >= 1),
    ("n_jobs", ">= 1", lambda v: v >= 1),
    ("timeout", "> 0 seconds or null", lambda v: v is None or v > 0),
    ("seed", "an integer in [0, 2**32 - 1] or null", lambda v: v is None or 0 <= v < 2**32),
    ("heartbeat_interval", ">= 1 second", lambda v: v >= 1),
    ("grace_period", ">= 1 second or null", lambda v: v is None or v >= 1),
    ("study_name", "a non-empty name or null", lambda v: v is None or str(v).strip() != ""),
    ("ensemble", ">= 1 (1 = the best trial's model)", lambda v: v >= 1),
)


def _check_keys_and_ranges(settings: DictConfig) -> None:
    """Refuse a ``hydra.sweeper`` key the schema lacks (``+hydra.sweeper.nope=1`` adds one), a
    number out of range, or a ``register_model`` name MLflow's registry would refuse only as the
    sweep ends (empty, ``/`` or ``:``, which split ``models:/NAME/VERSION``, ``.`` or ``..``)."""
    known = {f.name for f in dataclasses.fields(OptunaSweeperConf)}
    unknown = [key for key in settings if key not in known]
    if unknown:
        raise ConfigError(f"hydra.sweeper.{unknown[0]}: unknown key; allowed: {', '.join(user_keys(OptunaSweeperConf))}")
    for key, allowed, ok in _SETTING_RANGES:
        if not ok(settings[key]):
            raise ConfigError(f"hydra.sweeper.{key}={settings[key]}; must be {allowed}")
    if settings.direction is not None and settings.directions:
        raise ConfigError(f"hydra.sweeper.direction={settings.direction} and hydra.sweeper.directions: set one; "
                          "direction is the single objective's, directions lists a multi-objective study's metrics")
    name = settings.register_model
    if name is not None and (not str(name).strip() or any(c in str(name) for c in "/:") or name in (".", "..")):
        raise ConfigError(f"hydra.sweeper.register_model={name}: not a name MLflow's Model Registry accepts; "
                          "allowed: a non-empty name without '/' or ':' (e.g. car-prices), or null")


@dataclass(frozen=True)
class Pruner:
    """``hydra.sweeper.pruner`` with its ``pruner_kwargs``: which Optuna pruner stops a trial.

    It travels to each job with the trial's identity (:meth:`text`, see
    ``sweeper.sweep.trial_link``), where :meth:`build` makes it once per process."""

    name: str
    kwargs: Mapping[str, Any]

    def build(self) -> optuna.pruners.BasePruner:
        from sweeper.sweep.registry import make_pruner

        return make_pruner(self.name, dict(self.kwargs))

    def text(self) -> str:
        return json.dumps({"name": self.name, "kwargs": dict(self.kwargs)}, sort_keys=True)

    @classmethod
    def from_text(cls, text: str) -> Pruner:
        spec = json.loads(text)
        return cls(str(spec["name"]), spec.get("kwargs") or {})


@dataclass(frozen=True)
class Sampler:
    """``hydra.sweeper.sampler`` with its ``sampler_kwargs`` and ``seed``."""

    name: str
    kwargs: Mapping[str, Any]
    seed: int | None

    def build(self, seed: int | None = None, grid: dict[str, list] | None = None) -> optuna.samplers.BaseSampler:
        """The sampler, seeded with ``seed`` (default: ``hydra.sweeper.seed``); ``grid`` is
        the grid sampler's every point."""
        from sweeper.sweep.registry import make_sampler

        return make_sampler(self.name, self.seed if seed is None else seed, dict(self.kwargs), grid)

    @property
    def is_grid(self) -> bool:
        return self.name.lower() == "grid"


@dataclass(frozen=True)
class Settings:
    """``hydra.sweeper.*`` as the sweep uses them (see ``conf/hydra/sweeper/optuna.yaml``)."""

    n_trials: int
    timeout: float | None
    n_jobs: int
    sampler: Sampler
    pruner: Pruner
    storage: str
    study_name: str | None
    direction: str | None
    directions: tuple[str, ...] | None
    heartbeat_interval: int
    grace_period: int | None
    register_model: str | None
    start_from_defaults: bool
    #: The parent run's model averages the top this many complete trials (1: the best trial's).
    ensemble: int
    params: Mapping[str, Any]
    #: The app's check of a composed job config (raises ``SweeperError``), run on every value of
    #: the space before any trial; None: no check.
    validator: Callable[[DictConfig], None] | None
    #: ``(config, objectives) -> {"lines", "identity", "objectives", "description"}``, run once on
    #: the config of the space's fixed overrides before the study or the parent run exists.
    preflight: Callable[[DictConfig, list[str]], Mapping[str, Any]] | None

    @classmethod
    def parse(cls, raw: DictConfig) -> Settings:
        """The settings of the composed ``hydra.sweeper`` node; one line naming the key when one
        is unknown, out of range, or names no sampler, pruner or function."""
        _check_keys_and_ranges(raw)
        plain = OmegaConf.to_container(raw, resolve=True)
        assert isinstance(plain, dict)
        pruner = Pruner(str(plain["pruner"]).lower() if plain["pruner"] is not None else "none",
                        plain["pruner_kwargs"] or {})
        pruner.build()  # a bad name or keyword fails here
        typed = {f.name: plain[f.name] for f in dataclasses.fields(cls)}  # by the schema: Hydra checked the types
        return cls(**typed | dict(
            sampler=Sampler(str(plain["sampler"]), plain["sampler_kwargs"] or {}, plain["seed"]), pruner=pruner,
            directions=tuple(str(d) for d in plain["directions"]) if plain["directions"] else None,
            params=plain["params"] or {}, validator=_function("validator", plain["validator"]),
            preflight=_function("preflight", plain["preflight"]),
        ))


def _function(key: str, path: str | None) -> Any:
    """The function ``hydra.sweeper.<key>`` names by its dotted path, or None."""
    if not path:
        return None
    try:
        return get_method(str(path))
    except Exception as err:
        raise ConfigError(f"hydra.sweeper.{key}={path}: {one_line(err)}") from None


ConfigStore.instance().store(
    group="hydra/sweeper", name="optuna_schema", node=OptunaSweeperConf, provider="sweeper"
)
