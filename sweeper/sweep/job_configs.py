"""The sweep's job configs checked before any trial.

A search space is checked value by value (every choice, both ends of an interval) in every
context it can occur in, so a bad key, group option or value names itself before the first
trial. A group option is composed (once each, ~0.1 s a compose; the trials reuse them); a plain
key's value is set on a copy of its context's composed config with OmegaConf's ``update``, what
a compose does last with such an override (:mod:`sweeper.composer`).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable

from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeper.composer import Composer, composition_message, set_value, without_hydra
from sweeper.errors import ConfigError, SweeperError, one_line
from sweeper.overrides import check_bool_overrides
from sweeper.sweep import space as search_space
from sweeper.sweep.trial_link import IDENTITY_KEYS

log = logging.getLogger(__name__)


class JobConfigs(Composer):
    """The sweep's job configs (:class:`Composer`), its space checked with the app's validator."""

    def __init__(self, hydra_context: HydraContext, config: DictConfig,
                 validator: Callable[[DictConfig], None] | None) -> None:
        super().__init__(hydra_context, config)
        self._validator = validator

    def yaml(self, overrides: list[str]) -> str | None:
        """The job config of ``overrides`` as YAML (resolved when it can be), without ``hydra``;
        None, with a warning, when it no longer composes (the space or the configs changed)."""
        try:
            cfg = self.job_config(list(overrides))  # what the trial's job got (mostly composed already)
        except Exception as err:
            log.warning("best_config.yaml not written: %s", one_line(err))
            return None
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            return OmegaConf.to_yaml(cfg, resolve=True)
        except Exception:  # e.g. an interpolation only a running job can resolve
            return OmegaConf.to_yaml(cfg)

    def base(self, space: search_space.SearchSpace) -> DictConfig:
        """The config of the space's fixed overrides alone, without ``hydra`` (what the preflight reads)."""
        return without_hydra(self._try_compose(space.fixed, "hydra.sweeper.params"))

    def base_values(self, space: search_space.SearchSpace) -> tuple[dict[str, Any], list[str]]:
        """The space's keys' values in the base config, where the space allows them, and the
        keys left to sample (see ``space.base_values``)."""
        groups = {p.key for p in space.params if self.is_group(p.key)}
        return search_space.base_values(space, self.compose_once(space.fixed), groups)

    def check(self, space: search_space.SearchSpace) -> search_space.SearchSpace:
        """Fail before any trial if a value of the space cannot make a valid job config; return
        the space to search (without the keys a fixed group option lacks)."""
        self._composed.clear()
        return self._searched(space, *self._check(space))

    def check_beside(self, space: search_space.SearchSpace, beside: Any) -> Callable[[], search_space.SearchSpace]:
        """``check(space)``, run by ``beside`` (the launcher's, :mod:`sweeper.sweep.launching`) on
        another core while the sweep starts (importing MLflow: ~1.6 s, as long as the check); the
        function returned waits for it and gives what ``check`` gives (its compositions come back
        too), or raises its ConfigError. Without ``beside``, or when its process died, the check
        runs here: it writes nothing, so where it runs changes no outcome."""
        self._composed.clear()
        call = beside(self.check_outcome, space) if beside is not None else None
        if call is None:
            checked = self.check(space)
            return lambda: checked

        def result() -> search_space.SearchSpace:
            try:
                dropped, notes, composed, groups = call.result()  # or the check's error, raised
            except ChildProcessError as err:  # its process died (killed from outside): check here
                log.debug("the space check's process ended: checked here (%s)", err)
                return self.check(space)
            self._composed.update(composed)
            self._groups.update(groups)
            return self._searched(space, dropped, notes)

        return result

    def _searched(self, space: search_space.SearchSpace, dropped: set[str], notes: list[str]) -> search_space.SearchSpace:
        """The space to search (``dropped``: keys left out, with the keys conditional on them),
        the check's lines logged."""
        for note in notes:
            log.info("%s", note)
        self._cache.fixed[:] = space.fixed
        return search_space.SearchSpace([p for p in space.params if p.key not in dropped], space.fixed)

    def check_outcome(self, space: search_space.SearchSpace) -> tuple[set[str], list[str], dict, dict]:
        """What ``check_beside``'s other process sends back: (dropped keys, notes, the
        compositions, the group lookups); the launcher sends the check's error back as it is."""
        return *self._check(space), self._composed, self._groups

    def _check(self, space: search_space.SearchSpace) -> tuple[set[str], list[str]]:
        """``check``'s work: (the keys left out of the search, the lines that say why)."""
        notes: list[str] = []
        base = self._try_compose(space.fixed, "hydra.sweeper.params")
        by_key = {p.key: p for p in space.params}
        dropped: set[str] = set()
        for p in space.params:
            if p.parent in dropped:
                dropped.add(p.key)
                continue
            group = self.is_group(p.key)
            if p.parent is None:
                if not group and not p.override_key.startswith("+") and not search_space.has_key(base, p.key):
                    if p.fixed_parent and self._group_options_having(p.fixed_parent, p.key, space.fixed):
                        chosen = OmegaConf.select(base, f"hydra.runtime.choices.{p.fixed_parent}")
                        notes.append(f"{p.key} is not searched: {p.fixed_parent}={chosen} has no such key")
                        dropped.add(p.key)
                        continue
                    raise ConfigError(f"hydra.sweeper.params: unknown key '{p.key}'")
                contexts: list[list[str]] = [[]]
            else:
                parent = by_key[p.parent]
                contexts = self._choices_having(p.key, space.fixed, [parent.override(o) for o in parent.endpoints()])
                if not contexts:
                    raise ConfigError(f"hydra.sweeper.params.{p.key}: no option of {p.parent} has the key '{p.key}'")
            for ctx in contexts:
                for value in p.endpoints():
                    override = p.override(value)
                    where = f"hydra.sweeper.params: {override}"
                    if group:
                        cfg = self._try_compose(space.fixed + ctx + [override], where)
                    else:
                        cfg = self._with_value(self._app_config(space.fixed + ctx, where), override, where)
                    self._check_job_config(cfg, where, base)
        for key in IDENTITY_KEYS:  # every trial's job config asks (~20 ms each, trial 0 waited)
            self.is_group(key)
        return dropped, notes

    def _try_compose(self, overrides: list[str], where: str) -> DictConfig:
        try:
            return self.compose_once(overrides)
        except Exception as err:
            raise ConfigError(f"{where}: {composition_message(err)}") from None

    def _app_config(self, overrides: list[str], where: str) -> DictConfig:
        """The composed config of ``overrides`` without ``hydra`` (most of it, and no value of the
        space's), struct as a compose leaves it: what a value is set on, copied, ~5× cheaper."""
        key = ("app", *overrides)
        if key not in self._composed:
            cfg = without_hydra(self._try_compose(overrides, where))
            OmegaConf.set_struct(cfg, True)
            self._composed[key] = cfg
        return self._composed[key]

    def _with_value(self, cfg: DictConfig, override: str, where: str) -> DictConfig:
        """A copy of ``cfg`` with one plain key's value override set (see :func:`set_value`)."""
        copied = copy.deepcopy(cfg)
        try:
            set_value(copied, self._parser.parse_override(override))
            check_bool_overrides(copied, [override])
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        except Exception as err:
            raise ConfigError(f"{where}: {composition_message(err)}") from None
        return copied

    def _group_options_having(self, group: str, key: str, fixed: list[str]) -> list[list[str]]:
        """Each option of config group ``group`` (fixed in ``fixed``) whose config has ``key``."""
        others = [o for o in fixed if o.split("=", 1)[0].lstrip("+~") != group]
        options = self._loader.get_group_options(group)
        return self._choices_having(key, others, [f"{group}={option}" for option in options])

    def _choices_having(self, key: str, fixed: list[str], choices: list[str]) -> list[list[str]]:
        """``[choice]`` for each override in ``choices`` whose config (with ``fixed``) has ``key``."""
        return [[choice] for choice in choices
                if search_space.has_key(self._try_compose(fixed + [choice], f"hydra.sweeper.params: {choice}"), key)]

    def _check_job_config(self, cfg: DictConfig, where: str, base: DictConfig) -> None:
        """Run the app's own check (``hydra.sweeper.validator``). An error ``base`` (the config of
        the space's fixed overrides) has too is reported as it is, not blamed on ``where``."""
        error = self._job_config_error(cfg)
        if error is not None:
            raise ConfigError(error if error == self._job_config_error(base) else f"{where}: {error}")

    def _job_config_error(self, cfg: DictConfig) -> str | None:
        """What ``hydra.sweeper.validator`` says of ``cfg``: None when it passes (or none is set)."""
        try:
            if self._validator is not None:
                self._validator(without_hydra(cfg) if "hydra" in cfg else cfg)
        except SweeperError as err:
            return str(err)
        return None
