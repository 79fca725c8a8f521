"""A sweep's job configs, composed as Hydra's launchers compose them, in milliseconds.

Hydra's launchers compose each job's config in full (``load_sweep_config``, ~0.1 s). A sweep's
jobs differ mostly in values, so :meth:`Composer.job_config` composes each set of config-group
options once and sets the values on a copy. The sweeper (its space check, the best trial's YAML)
and the local launcher (each job's config) compose through it; ``tests/test_job_configs.py``
checks the result equals Hydra's compose.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException


def composition_message(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors, down to the facts on one line."""
    noise = ("To append", "full_key", "reference_type", "object_type", "Set the environment")
    text = str(err)
    if err.__cause__ is not None:  # "Error merging override k=v" hides why; the cause says it
        text += ": " + str(err.__cause__)
    text = text.split("Config search path:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(line for line in lines if not line.startswith(noise)) or type(err).__name__


def set_value(cfg: DictConfig, override: Override) -> None:
    """Set a plain key's value (``key=v``, ``+key=v``, ``++key=v``) in ``cfg`` as a compose does,
    failing with the same words: a struct config refuses an unknown key without ``+``, and ``+``
    refuses a key that exists."""
    key, value = override.key_or_group, override.value()
    try:
        if override.is_add() and OmegaConf.select(cfg, key, throw_on_missing=False) is not None \
                and not isinstance(value, (dict, list)):
            line = override.input_line
            raise ValueError(f"Could not append to config. An item is already at '{key}'.\n"
                             f"Either remove + prefix: '{line[1:]}'\nOr add a second + to add or override '{key}': '+{line}'")
        try:
            OmegaConf.update(cfg, key, value, merge=True, force_add=override.is_add() or override.is_force_add())
        except (ConfigAttributeError, ConfigKeyError):
            raise ValueError(f"Could not override '{key}'.") from None
    except OmegaConfBaseException as err:
        raise ValueError(f"Error merging override {override.input_line}") from err


def without_hydra(cfg: DictConfig) -> DictConfig:
    """``cfg`` without its ``hydra`` node."""
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


@dataclasses.dataclass
class _Cache:
    """What the composers of one sweep's config share (see ``Composer``)."""

    composed: dict[tuple[str, ...], DictConfig] = dataclasses.field(default_factory=dict)  # compose_once
    groups: dict[str, bool] = dataclasses.field(default_factory=dict)  # is_group
    fixed: list[str] = dataclasses.field(default_factory=list)  # overrides every job starts with, if known


_caches: weakref.WeakKeyDictionary[DictConfig, _Cache] = weakref.WeakKeyDictionary()


class Composer:
    """Composes a sweep's job configs (the sweep's own config plus a job's overrides) as Hydra's
    launchers do, with the compositions of config-group options cached for the sweep: every
    composer of the same config object (the sweeper's, its launcher's) shares them."""

    def __init__(self, hydra_context: HydraContext, config: DictConfig) -> None:
        self._loader = hydra_context.config_loader
        self._config = config
        self._parser = OverridesParser.create(config_loader=self._loader)
        self._cache = _caches.setdefault(config, _Cache())
        self._composed, self._groups = self._cache.composed, self._cache.groups

    def compose(self, overrides: list[str]) -> DictConfig:
        """The config a job with ``overrides`` gets (a full Hydra compose)."""
        return self._loader.load_sweep_config(self._config, list(overrides))

    def compose_once(self, overrides: list[str]) -> DictConfig:
        """``compose``, remembered for the sweep (callers only read it): only the fixed overrides
        plus options of swept config groups come here, a handful of lists."""
        # The sweep's own Hydra overrides are part of every composition, and change once (a
        # password moved out of the storage URL: OptunaSweeperImpl._keep_out_of_files).
        key = (*self._config.hydra.overrides.hydra, "", *overrides)
        if key not in self._composed:
            self._composed[key] = self.compose(overrides)
        return self._composed[key]

    def is_group(self, key: str) -> bool:
        if key not in self._groups:  # with the sweep's own hydra.searchpath, as a compose sees it
            self._groups[key] = bool(self._loader.get_group_options(
                key, config_name=self._config.hydra.job.config_name,
                overrides=list(self._config.hydra.overrides.hydra)))
        return self._groups[key]

    def job_config(self, overrides: list[str]) -> DictConfig:
        """The config Hydra's launcher gives a job with ``overrides`` (``compose``).

        The composition of the space's fixed overrides (when the job's start with them, as a
        trial's do) and the job's group options is made once per set of options
        (``compose_once``, the very compositions the space's check made already) and copied.
        Each other plain ``key=value``, Hydra's own ``++hydra...`` ones included, is then set as
        a compose sets it, in the same order (:func:`set_value`); last, the two override lists
        and ``hydra.job.override_dirname`` are written as Hydra writes them. What this path does
        not cover (deleting a key, a package ``@``) is composed in full.
        """
        parsed = self._parser.parse_overrides(list(overrides))
        if any(o.is_delete() or o.package is not None or o.is_sweep_override() for o in parsed):
            return self.compose(overrides)
        known = self._cache.fixed
        fixed = known if list(overrides[:len(known)]) == known else []
        rest = parsed[len(fixed):]
        groups = [o.input_line for o in rest if self.is_group(o.key_or_group)]
        cfg = copy.deepcopy(self.compose_once(fixed + groups))
        for override in rest:
            if override.input_line not in groups:
                set_value(cfg, override)
        with open_dict(cfg):
            hydra = cfg.hydra
            hydra.overrides.hydra = list(self._config.hydra.overrides.hydra) + [
                o.input_line for o in parsed if o.is_hydra_override()]
            task = [o for o in parsed if not o.is_hydra_override()]
            hydra.overrides.task = [o.input_line for o in task]
            dirname = hydra.job.config.override_dirname  # the task's lines not excluded, sorted
            kept = sorted(o.input_line for o in task if o.key_or_group not in dirname.exclude_keys)
            hydra.job.override_dirname = str(dirname.item_sep).join(kept).replace("=", str(dirname.kv_sep))
        OmegaConf.copy_cache(from_config=self._config, to_config=cfg)
        return cfg
