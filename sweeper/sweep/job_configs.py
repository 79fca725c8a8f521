"""The sweep's job configs: composed through Hydra's config loader, and checked before any trial.

A search space is checked value by value (every choice, both ends of an interval) in every
context it can occur in, so an unknown key, an unknown group option or a value the config
schema or the app's validator rejects names itself before the first trial. A config group's
option is composed (once each, ~0.1 s a compose; the trials reuse them for their conditional
keys); a plain key's value is set on a copy of its context's composed config with OmegaConf's
``update``, which is what a compose does last with such an override.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import signal
import sys
import threading
from typing import Any, Callable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import HydraContext
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

from sweeper.errors import ConfigError, SweeperError, one_line, sendable
from sweeper.overrides import check_bool_overrides
from sweeper.sweep import space as search_space
from sweeper.sweep.trial_link import IDENTITY_KEYS

log = logging.getLogger(__name__)


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


def override_dirname(task: list[Override], exclude_keys: list[str], item_sep: str, kv_sep: str) -> str:
    """``hydra.job.override_dirname`` as Hydra writes it: the task overrides whose key is not
    excluded, sorted, joined by ``item_sep``, each ``=`` written ``kv_sep``."""
    lines = sorted(o.input_line for o in task if o.key_or_group not in exclude_keys)
    return item_sep.join(lines).replace("=", kv_sep)


def fork_context() -> Any:
    """multiprocessing's ``fork`` context where a fork is safe (Linux, and this process runs
    one thread; macOS has fork, but not safely once its system frameworks are loaded), else
    None."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None
    return multiprocessing.get_context("fork")


def _without_hydra(cfg: DictConfig) -> DictConfig:
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


class JobConfigs:
    """Composes the sweep's job configs (the sweep's own config plus a job's overrides)."""

    def __init__(self, hydra_context: HydraContext, config: DictConfig, validator: str | None) -> None:
        self._loader = hydra_context.config_loader
        self._config = config
        self._parser = OverridesParser.create(config_loader=self._loader)
        self._validator = validator
        self._composed: dict[tuple[str, ...], DictConfig] = {}  # see compose_once
        self._groups: dict[str, bool] = {}
        self._fixed: list[str] = []  # the checked space's fixed overrides (see job_config)

    def compose(self, overrides: list[str]) -> DictConfig:
        """The config a job with ``overrides`` gets (a full Hydra compose, ~0.1 s)."""
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
        """The config Hydra's launcher gives a job with ``overrides`` (``compose``), built in a
        few milliseconds instead of a ~0.1 s compose.

        A trial's overrides differ from the next trial's in values, and only a little in config
        group options. So the composition of the space's fixed overrides (when the job's start
        with them, as a trial's do) and the job's group options (and the sweep's own Hydra
        overrides) is made once per set of options (``compose_once``) and copied: the very
        compositions the space's check and the trials' suggestions made already. Each other
        plain ``key=value``, Hydra's own ``++hydra...`` ones included, is then set as a compose
        sets it, in the same order (:func:`set_value`); last, the two override lists and
        ``hydra.job.override_dirname`` are written as Hydra writes them. What this path does not
        cover (deleting a key, a package ``@``) is composed in full.
        ``tests/test_job_configs.py`` checks the result equals Hydra's compose.
        """
        parsed = self._parser.parse_overrides(list(overrides))
        if any(o.is_delete() or o.package is not None or o.is_sweep_override() for o in parsed):
            return self.compose(overrides)
        fixed = self._fixed if list(overrides[:len(self._fixed)]) == self._fixed else []
        rest = parsed[len(fixed):]
        groups = [o.input_line for o in rest if self.is_group(o.key_or_group)]
        cfg = copy.deepcopy(self.compose_once(fixed + groups))
        for override in rest:
            if override.input_line in groups:
                continue
            set_value(cfg, override)
        with open_dict(cfg):
            hydra = cfg.hydra
            hydra.overrides.hydra = list(self._config.hydra.overrides.hydra) + [
                o.input_line for o in parsed if o.is_hydra_override()]
            task = [o for o in parsed if not o.is_hydra_override()]
            hydra.overrides.task = [o.input_line for o in task]
            dirname = hydra.job.config.override_dirname
            hydra.job.override_dirname = override_dirname(
                task, list(dirname.exclude_keys), str(dirname.item_sep), str(dirname.kv_sep))
        OmegaConf.copy_cache(from_config=self._config, to_config=cfg)
        return cfg

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
        return _without_hydra(self._try_compose(space.fixed, "hydra.sweeper.params"))

    def base_values(self, space: search_space.SearchSpace) -> tuple[dict[str, Any], list[str]]:
        """The space's keys' values in the base config, where the space allows them, and the
        keys left to sample (see ``space.base_values``)."""
        groups = {p.key for p in space.params if self.is_group(p.key)}
        return search_space.base_values(space, self.compose_once(space.fixed), groups)

    # -- checking a space ------------------------------------------------------------------

    def check(self, space: search_space.SearchSpace) -> search_space.SearchSpace:
        """Fail before any trial if a value of the space cannot make a valid job config.

        Returns the space to search: without the keys a fixed group option lacks.
        """
        self._composed = {}
        return self._searched(space, *self._check(space))

    def check_in_background(self, space: search_space.SearchSpace) -> Callable[[], search_space.SearchSpace]:
        """``check(space)`` started in a forked process, so that the sweep's start (importing
        MLflow: ~1.6 s, as long as the check) runs beside it on another core; the function
        returned waits for it and gives what ``check`` gives, or raises its ConfigError. The
        compositions the check made come back with it (the trials reuse them). Where there is no
        ``fork`` (or threads already run, which a fork would not carry), the check runs here and
        now. Nothing the check does writes anywhere, so running it elsewhere changes no
        outcome."""
        context = fork_context()
        if context is None:
            checked = self.check(space)
            return lambda: checked
        self._composed = {}
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=self._check_in_child, args=(space, send), daemon=True,
                                name="sweeper-space-check")
        child.start()
        send.close()

        def result() -> search_space.SearchSpace:
            try:
                outcome = receive.recv()
            except EOFError:  # the check's process died (killed from outside): check here
                outcome = None
            except BaseException:  # Ctrl-C while waiting: the check is of no use any more
                child.kill()
                raise
            finally:
                receive.close()
                child.join()
            if outcome is None:
                log.debug("the space check's process ended with exit code %s: checked here", child.exitcode)
                return self.check(space)
            if isinstance(outcome, BaseException):
                raise outcome
            dropped, notes, composed, groups = outcome
            self._composed.update(composed)
            self._groups.update(groups)
            return self._searched(space, dropped, notes)

        return result

    def _searched(self, space: search_space.SearchSpace, dropped: set[str], notes: list[str]) -> search_space.SearchSpace:
        """The space to search, the check's lines logged."""
        for note in notes:
            log.info("%s", note)
        self._fixed = list(space.fixed)
        return space.without(dropped)

    def _check_in_child(self, space: search_space.SearchSpace, send: Any) -> None:
        """The forked process of ``check_in_background``: sends (dropped keys, notes, the
        compositions, the group lookups), or the error the check raised. Ctrl-C is the sweep's:
        it stops this process (``result``)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            dropped, notes = self._check(space)
            outcome: Any = (dropped, notes, self._composed, self._groups)
        except Exception as err:  # raised again in the sweep's own process
            outcome = sendable(err)
        try:
            send.send(outcome)
        finally:
            send.close()

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
            cfg = _without_hydra(self._try_compose(overrides, where))
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
        """Run the app's own check (``hydra.sweeper.validator``, a function's dotted path).

        An error the space's fixed overrides alone cause (``objective=test_rmse``), i.e. one
        ``base`` (their composed config) has too, is reported as it is, not as if the swept
        value in ``where`` had caused it.
        """
        error = self._job_config_error(cfg)
        if error is None:
            return
        if error == self._job_config_error(base):
            raise ConfigError(error)
        raise ConfigError(f"{where}: {error}")

    def _job_config_error(self, cfg: DictConfig) -> str | None:
        """What ``hydra.sweeper.validator`` says of ``cfg``: None when it passes (or none is set)."""
        if not self._validator:
            return None
        try:
            validator = get_method(self._validator)
        except Exception as err:
            raise ConfigError(f"hydra.sweeper.validator={self._validator}: {one_line(err)}") from None
        try:
            validator(_without_hydra(cfg) if "hydra" in cfg else cfg)
        except SweeperError as err:
            return str(err)
        return None
