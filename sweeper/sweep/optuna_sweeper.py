"""The Optuna sweeper: asks trials, launches them as Hydra jobs, tells Optuna how they ended.

One loop iteration asks ``n_jobs`` trials from the study, turns each into Hydra overrides (its
suggested values plus its identity, see :mod:`sweeper.sweep.trial_link`), launches them as one
batch through the configured launcher (in-process, joblib, submitit, ...) and tells each result
to the study. The study in the storage is the single source of truth: how many trials remain,
which trial a job is, and which MLflow run is the sweep's parent are all read from it, so one
process or many workers sharing a PostgreSQL storage behave the same.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import socket
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Sequence

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import TrialState

from sweeper import PROJECT_ROOT
from sweeper.errors import ConfigError, JobLost, StoreError, SweeperError, one_line
from sweeper.overrides import check_bool_overrides
from sweeper.sweep import console, parent_run, space as search_space, study as studies, trial_link
from sweeper.sweep.registry import make_pruner, make_sampler
from sweeper.sweep.storage import (
    budget_lock,
    hide_password,
    open_storage,
    resolve_storage_url,
    storage_calls,
)
from sweeper.tracking import DEFAULT_TRACKING_URI, experiment_name, get_or_create_experiment, tracking_uri
from sweeper.tracking.store import password_to_environment, wait_until_alive

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///mlruns/optuna.db"


def _check_server(uri: str) -> None:
    """Fail at once if the MLflow server does not answer (its client would retry for minutes)."""
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
            pass
    except Exception as err:
        raise ConfigError(f"mlflow.tracking_uri={uri}: the MLflow server does not answer ({one_line(err)})") from None


def _shown_uri(uri: str, default_relative: str) -> str:
    """``uri`` as a user types it: the project's default SQLite file stays relative."""
    absolute = resolve_storage_url(default_relative, PROJECT_ROOT)
    return default_relative if uri == absolute else uri


def _composition_message(err: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors, down to the facts on one line."""
    noise = ("To append", "full_key", "reference_type", "object_type", "Set the environment")
    text = str(err)
    if err.__cause__ is not None:  # "Error merging override k=v" hides why; the cause says it
        text += ": " + str(err.__cause__)
    text = text.split("Config search path:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(line for line in lines if not line.startswith(noise)) or type(err).__name__


#: ``hydra.sweeper.*`` numbers: (key, allowed, ok). Their types are checked by Hydra already.
_SETTING_RANGES = (
    ("n_trials", ">= 1", lambda v: v is not None and v >= 1),
    ("n_jobs", ">= 1", lambda v: v >= 1),
    ("timeout", "> 0 seconds or null", lambda v: v is None or v > 0),
    ("seed", "an integer in [0, 2**32 - 1] or null", lambda v: v is None or 0 <= v < 2**32),
    ("heartbeat_interval", ">= 1 second", lambda v: v >= 1),
    ("grace_period", ">= 1 second or null", lambda v: v is None or v >= 1),
)


def _check_settings(settings: DictConfig) -> None:
    """Refuse a ``hydra.sweeper`` key the schema lacks (``+hydra.sweeper.nope=1`` adds one) or a
    number out of range before anything is opened or created."""
    from sweeper.cli import user_keys
    from sweeper.sweep.settings import OptunaSweeperConf

    known = {f.name for f in dataclasses.fields(OptunaSweeperConf)}
    unknown = [key for key in settings if key not in known]
    if unknown:
        raise ConfigError(f"hydra.sweeper.{unknown[0]}: unknown key; allowed: {', '.join(user_keys(OptunaSweeperConf))}")
    for key, allowed, ok in _SETTING_RANGES:
        if not ok(settings[key]):
            raise ConfigError(f"hydra.sweeper.{key}={settings[key]}; must be {allowed}")


class SweepError(CompactHydraException):
    """A bad setting or search space: Hydra prints just this one line and exits non-zero."""


class OptunaSweeperImpl:
    """Hydra Sweeper logic; ``hydra_plugins.sweeper_optuna.OptunaSweeper`` delegates here."""

    def __init__(self, **settings: Any) -> None:
        self.settings = OmegaConf.create(settings)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None
        self._composed: dict[tuple[str, ...], DictConfig] = {}
        self._description: str | None = None  # the experiment's, from the preflight

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # -- composing job configs -------------------------------------------------------------

    def _compose(self, overrides: list[str]) -> DictConfig:
        assert self.hydra_context is not None and self.config is not None
        return self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))

    def _compose_once(self, overrides: list[str]) -> DictConfig:
        """``_compose``, remembered for the sweep (callers only read it).

        Only the fixed overrides plus options of swept config groups come here: a handful of
        lists, composed at validation and then reused by every trial's conditional keys (a
        Hydra compose costs ~0.1 s; benchmarks/sweep_overhead.py).
        """
        key = tuple(overrides)
        if key not in self._composed:
            self._composed[key] = self._compose(overrides)
        return self._composed[key]

    def _try_compose(self, overrides: list[str], where: str) -> DictConfig:
        try:
            return self._compose_once(overrides)
        except Exception as err:
            raise ConfigError(f"{where}: {_composition_message(err)}") from None

    def _with_value(self, cfg: DictConfig, override: str, where: str) -> DictConfig:
        """A copy of ``cfg`` with one value override applied the way a compose applies it.

        Hydra applies the overrides of plain keys (not config groups) to the composed config as
        its last step; doing only that step on a copy gives the same config, or the same error,
        as composing again with ``override`` added, without another ~0.1 s compose.
        """
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        copied = copy.deepcopy(cfg)
        try:
            ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([override]), copied)
        except Exception as err:
            raise ConfigError(f"{where}: {_composition_message(err)}") from None
        try:
            check_bool_overrides(copied, [override])
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        return copied

    def _validate(self, space: search_space.SearchSpace) -> search_space.SearchSpace:
        """Fail before any trial if a value of the space cannot make a valid job config.

        Checks every choice (both ends of an interval) in every context it can occur in, so an
        unknown key, an unknown group option or a value the config schema rejects names itself.
        A config group's options are composed (once each, kept for the trials' conditional
        keys); a plain key's value is applied to a copy of its context's composed config.
        Returns the space to search: without the keys a fixed group option lacks.
        """
        loader = self.hydra_context.config_loader
        self._composed = {}
        base = self._try_compose(space.fixed, "hydra.sweeper.params")
        by_key = {p.key: p for p in space.params}
        dropped: set[str] = set()
        for p in space.params:
            if p.parent in dropped:
                dropped.add(p.key)
                continue
            group = bool(loader.get_group_options(p.key))
            if p.parent is None:
                if not group and not p.override_key.startswith("+") and not search_space.has_key(base, p.key):
                    if p.fixed_parent and self._group_options_having(p.fixed_parent, p.key, space.fixed):
                        chosen = OmegaConf.select(base, f"hydra.runtime.choices.{p.fixed_parent}")
                        log.info("%s is not searched: %s=%s has no such key", p.key, p.fixed_parent, chosen)
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
                        cfg = self._with_value(self._try_compose(space.fixed + ctx, where), override, where)
                    self._validate_job_config(cfg, where, base)
        return space.without(dropped)

    def _group_options_having(self, group: str, key: str, fixed: list[str]) -> list[list[str]]:
        """Each option of config group ``group`` (fixed in ``fixed``) whose config has ``key``."""
        others = [o for o in fixed if o.split("=", 1)[0].lstrip("+~") != group]
        options = self.hydra_context.config_loader.get_group_options(group)
        return self._choices_having(key, others, [f"{group}={option}" for option in options])

    def _choices_having(self, key: str, fixed: list[str], choices: list[str]) -> list[list[str]]:
        """``[choice]`` for each override in ``choices`` whose config (with ``fixed``) has ``key``."""
        return [[choice] for choice in choices
                if search_space.has_key(self._try_compose(fixed + [choice], f"hydra.sweeper.params: {choice}"), key)]

    def _validate_job_config(self, cfg: DictConfig, where: str, base: DictConfig) -> None:
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
        if not self.settings.validator:
            return None
        from hydra.utils import get_method

        try:
            validator = get_method(str(self.settings.validator))
        except Exception as err:
            raise ConfigError(f"hydra.sweeper.validator={self.settings.validator}: {one_line(err)}") from None
        try:
            validator(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
        except SweeperError as err:
            return str(err)
        return None

    def _preflight(self, space: search_space.SearchSpace, objectives: list[str]) -> tuple[dict[str, str], list[str]]:
        """Run ``hydra.sweeper.preflight`` once on the config of the space's fixed overrides
        (the app loads its dataset and checks the objectives), before the study or the parent
        run exists. It returns ``{"lines": [...], "identity": {...}, "objectives": [...]}``: the
        lines are logged, the identity is what the study must keep (`studies.check_identity`),
        the objectives are ``objectives`` with ``auto`` resolved for the data's task. Returns
        (identity, objectives)."""
        if not self.settings.preflight:
            return {}, objectives
        from hydra.utils import get_method

        try:
            preflight = get_method(str(self.settings.preflight))
        except Exception as err:
            raise ConfigError(f"hydra.sweeper.preflight={self.settings.preflight}: {one_line(err)}") from None
        base = self._try_compose(space.fixed, "hydra.sweeper.params")
        found = preflight(OmegaConf.masked_copy(base, [k for k in base if k != "hydra"]), objectives) or {}
        for line in found.get("lines", []):
            log.info("%s", line)
        self._description = found.get("description")
        identity = {str(k): str(v) for k, v in found.get("identity", {}).items()}
        return identity, [str(name) for name in found.get("objectives", objectives)]

    def _best_config_yaml(self, trial: optuna.trial.FrozenTrial) -> str | None:
        overrides = trial.system_attrs.get(studies.OVERRIDES)
        if overrides is None:
            return None
        try:
            cfg = self._compose(list(overrides))
        except Exception as err:  # the space or the configs changed since that trial ran
            log.warning("best_config.yaml not written: %s", one_line(err))
            return None
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            return OmegaConf.to_yaml(cfg, resolve=True)
        except Exception:  # e.g. an interpolation only a running job can resolve
            return OmegaConf.to_yaml(cfg)

    # -- the sweep ---------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> Any:
        with warnings.catch_warnings():
            # Heartbeats, metric names and fail_stale_trials are "experimental" in Optuna, and it
            # warns that heartbeats are meant for Study.optimize (the sweeper beats itself).
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            if not self._verbose():
                optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created ..."
            try:
                return self._sweep(arguments)
            except SweeperError as err:
                raise SweepError(str(err)) from None

    def _verbose(self) -> bool:
        """``hydra.verbose`` set (true or a list of loggers): Hydra's and Optuna's own lines show."""
        return bool(OmegaConf.select(self.config, "hydra.verbose", default=False))

    def _sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        s = self.settings
        cfg = self.config

        objective = str(OmegaConf.select(cfg, "objective", default="val_rmse"))
        objectives, directions = studies.objectives_and_directions(
            objective, s.direction, list(s.directions) if s.directions else None
        )
        _check_settings(s)

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = OmegaConf.to_container(s.params, resolve=True) if s.params else {}
        space = self._validate(search_space.parse(params, arguments, parser))
        grid = space.grid() if str(s.sampler).lower() == "grid" else None
        pruner_spec = {"name": s.pruner, "kwargs": OmegaConf.to_container(s.pruner_kwargs, resolve=True)}
        sampler_kwargs = OmegaConf.to_container(s.sampler_kwargs, resolve=True)
        make_sampler(str(s.sampler), s.seed, sampler_kwargs, grid)  # a bad sampler fails here
        make_pruner(pruner_spec["name"], pruner_spec["kwargs"])  # and a bad pruner
        identity, resolved = self._preflight(space, objectives)
        if resolved != objectives:  # objective=auto, now known to be val_rmse or val_log_loss
            objectives, directions = studies.objectives_and_directions(
                resolved[0], s.direction, resolved if s.directions else None
            )

        storage_url = resolve_storage_url(str(s.storage), PROJECT_ROOT)
        try:
            storage = open_storage(storage_url, s.heartbeat_interval, s.grace_period)
        except Exception as err:
            shown = hide_password(str(s.storage))
            message = one_line(err).replace(str(s.storage), shown).replace(storage_url, shown)
            raise ConfigError(f"hydra.sweeper.storage={shown}: {message}") from None
        job_storage_url = password_to_environment(storage_url, "hydra.sweeper.storage")
        if job_storage_url != storage_url:
            # Only a PostgreSQL URL changes, and resolve_storage_url leaves those as typed.
            self._keep_out_of_files(str(s.storage), job_storage_url)
        client, experiment_id, mlflow_uri = self._connect_mlflow()
        study, created = self._open_study(storage, directions, objectives, sampler_kwargs, grid)
        studies.check_identity(study, identity)
        if created and s.start_from_defaults and grid is None:
            self._enqueue_defaults(study, space)
        parent_run_id = parent_run.find_or_create(
            client,
            experiment_id,
            study,
            created,
            {parent_run.SAMPLER_TAG: str(s.sampler), parent_run.PRUNER_TAG: str(s.pruner)},
        )

        sweep_dir = Path(str(cfg.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")

        run = _SweepRun(self, study, space, objectives, storage_url, parent_run_id, pruner_spec, job_storage_url,
                        mlflow_uri)
        self._recover(run, client, experiment_id)
        log.info(
            "study '%s' (%s, sampler %s, pruner %s): %d of %d trials finished; MLflow parent run %s",
            study.study_name, "resumed" if not created else "new", s.sampler, s.pruner,
            studies.count(study)[0], s.n_trials, parent_run_id,
        )
        n_trials = int(s.n_trials)
        if studies.count(study)[0] >= n_trials:
            log.info("the study already has %d finished trials: nothing to run (raise hydra.sweeper.n_trials "
                     "for more)", studies.count(study)[0])
        if grid is not None and n_trials > math.prod(len(v) for v in grid.values()):
            n_trials = math.prod(len(v) for v in grid.values())
            log.info("the grid has %d points: n_trials lowered to match", n_trials)
        status, stopped = "FINISHED", None
        try:
            returns = run.loop(n_trials, s.timeout, int(s.n_jobs))
        except KeyboardInterrupt:
            status = "KILLED"
            returns = []
        except StoreError as error:
            stopped = error
        finally:
            if stopped is None:
                parent_run.close_finished_children(client, experiment_id, parent_run_id, study)
                self._finish(run, client, parent_run_id, mlflow_uri, job_storage_url, status)
        if stopped is not None:
            self._stopped(run, client, parent_run_id, stopped)
        if status == "KILLED":
            log.info("interrupted: the running trial is FAIL, finished trials are kept; rerun the same command to resume")
            raise SystemExit(130)
        if not run.best_trials():
            raise ConfigError(studies.why_none_completed(study))
        return returns

    def _stopped(self, run: "_SweepRun", client: Any, parent_run_id: str, error: StoreError) -> None:
        """End a sweep whose tracking store or storage stopped working: no MLflow write is
        tried on a store that failed (each would wait for it), the parent run is ended FAILED
        when MLflow still works, and one line says what failed and how to resume. The trial it
        hit is retried on resume; the parent run and its leftover children are set right then."""
        if not str(error).startswith("mlflow.tracking_uri="):
            try:
                parent_run.finish(client, parent_run_id, "FAILED")
            except Exception:
                pass
        try:
            finished, _ = studies.count(run.study)
            done = f"{finished} of {self.settings.n_trials} trials finished"
        except Exception:
            done = "finished trials are kept"
        raise SweeperError(f"{error}; the sweep stopped ({done}): rerun the same command to resume once it works again")

    def _keep_out_of_files(self, given: str, safe: str) -> None:
        """Replace ``given`` (the storage URL as the user wrote it) by ``safe`` in the config the
        jobs are composed from, so no job's ``.hydra/*.yaml`` nor ``multirun.yaml`` holds it."""
        from omegaconf import read_write

        with read_write(self.config), open_dict(self.config):
            self.config.hydra.sweeper.storage = safe
            overrides = self.config.hydra.overrides.hydra
            for i, override in enumerate(list(overrides)):
                if given in override:
                    overrides[i] = override.replace(given, safe)

    def _connect_mlflow(self) -> tuple[Any, str, str]:
        """(client, experiment id, tracking URI) of the sweep; one clear line if unreachable."""
        from mlflow import MlflowClient

        uri = tracking_uri(OmegaConf.select(self.config, "mlflow.tracking_uri", default=None))
        if uri.startswith(("http://", "https://")):
            _check_server(uri)
        client = MlflowClient(tracking_uri=uri)
        try:
            experiment = get_or_create_experiment(client, experiment_name(self.config), self._description)
            return client, experiment, uri
        except Exception as err:
            raise ConfigError(f"mlflow.tracking_uri={uri}: {one_line(err)}") from None

    def _enqueue_defaults(self, study: optuna.Study, space: search_space.SearchSpace) -> None:
        """Make the new study's first trial the base config (``start_from_defaults``)."""
        loader = self.hydra_context.config_loader
        groups = {p.key for p in space.params if loader.get_group_options(p.key)}
        base = self._compose_once(space.fixed)
        values, outside = search_space.base_values(space, base, groups)
        if not values:
            return
        study.enqueue_trial(values, skip_if_exists=True)
        if outside:
            log.info("trial 0 trains the base config where the space allows it (hydra.sweeper.start_from_defaults); "
                     "sampled, as their base value is not in the space: %s", ", ".join(outside))
        else:
            log.info("trial 0 trains the base config (hydra.sweeper.start_from_defaults)")

    def _open_study(
        self, storage: Any, directions: list[str], objectives: list[str], sampler_kwargs: dict, grid: dict | None
    ) -> tuple[optuna.Study, bool]:
        """The study (created or resumed) with its sampler; also whether this call created it.

        The sampler's seed makes a fresh sweep reproducible. A worker joining an existing study
        (a resume, or one of many workers) offsets it by the trials already asked and by its
        host and process id, so it replays neither the first run nor a worker started with it.
        """
        s = self.settings
        study_name = str(s.study_name or experiment_name(self.config))
        study, created = studies.create_or_load(storage, study_name, directions)
        studies.check_metric_names(study, objectives)
        study.set_metric_names(objectives)
        seed = None
        if s.seed is not None:
            seed = int(s.seed)
            if not created:
                worker = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode())
                seed = (seed + len(study.get_trials(deepcopy=False)) + worker) % 2**32
        study.sampler = make_sampler(str(s.sampler), seed, sampler_kwargs, grid)
        return study, created

    def _recover(self, run: "_SweepRun", client: Any, experiment_id: str) -> None:
        run.fail_orphans()
        parent_run.close_finished_children(client, experiment_id, run.parent_run_id, run.study)

    def _log_best_model(self, client: Any, parent_run_id: str, best: optuna.trial.FrozenTrial,
                        mlflow_uri: str) -> list[str]:
        """The best trial's model on the parent run, registered as ``register_model`` if set;
        the summary lines that say where they are."""
        from sweeper.tracking.mlflow_model import register

        best_run_id = str(best.user_attrs[studies.RUN_ID])
        uri = parent_run.log_best_model(client, parent_run_id, best_run_id, mlflow_uri)
        lines = [f"best model: runs:/{parent_run_id}/model (trial #{best.number})"]
        name = self.settings.register_model
        if name:  # a new version each time a sweep ends
            try:
                lines.append(f"registered as {register(uri or f'runs:/{parent_run_id}/model', str(name))}")
            except Exception as err:
                log.warning("hydra.sweeper.register_model=%s: not registered: %s", name, one_line(err))
        return lines

    def _finish(
        self, run: "_SweepRun", client: Any, parent_run_id: str, mlflow_uri: str, storage_url: str, status: str
    ) -> None:
        study, objectives = run.study, run.objectives
        best = run.best_trials()
        best_yaml = self._best_config_yaml(best[0]) if best else None
        if status == "FINISHED" and not best:
            status = "FAILED"  # the sweep produced nothing to use; its command exits non-zero
        model_lines = []
        try:
            parent_run.log_results(client, parent_run_id, study, objectives, best_yaml)
            if len(objectives) == 1 and best and best[0].user_attrs.get(studies.RUN_ID):
                model_lines = self._log_best_model(client, parent_run_id, best[0], mlflow_uri)
        finally:
            parent_run.finish(client, parent_run_id, status)

        states = [t.state for t in study.get_trials(deepcopy=False)]
        counts = ", ".join(f"{states.count(s)} {s.name}" for s in studies.FINISHED)
        lines = [f"sweep '{study.study_name}': {counts} in {console.duration(time.monotonic() - run.started)}"]
        if not best:
            lines.append("no trial completed")
        for t in best[: console.TOP]:
            values = ", ".join(f"{m}={v:.6g}" for m, v in zip(objectives, t.values))
            values += console.held_out(t.user_attrs.get(studies.METRICS) or {}, objectives)
            lines.append(
                f"{'best' if len(objectives) == 1 else 'pareto'} trial #{t.number}: {values}  "
                f"(MLflow run {t.user_attrs.get(studies.RUN_ID)})"
            )
        if len(objectives) == 1 and best:
            lines.append("  " + " ".join(f"{k}={v}" for k, v in best[0].params.items()))
            top = console.top_table(console.ranked(study, objectives), objectives)
            if len(top) > 2:  # the top trials and the parameters that differ among them
                lines.extend(top)
        lines.extend(model_lines)
        lines.append(f"MLflow parent run {parent_run_id}:")
        shown = hide_password(_shown_uri(mlflow_uri, DEFAULT_TRACKING_URI))
        if mlflow_uri.startswith(("http://", "https://")):
            lines.append(f"  MLflow UI:  {shown}")
        else:
            lines.append(f"  MLflow UI:  mlflow ui --backend-store-uri {shown}")
        lines.append(f"  dashboard:  optuna-dashboard {_shown_uri(storage_url, DEFAULT_STORAGE)}"
                     "   (pip install optuna-dashboard)")
        store = "" if shown == DEFAULT_TRACKING_URI else f" --tracking-uri {shown}"
        lines.append(f"  report:     python -m sweeper.report --sweep {parent_run_id}{store}")
        for line in lines:
            log.info(line)


class _SweepRun:
    """One sweeper process's pass over a study: ask, launch, tell, report progress."""

    def __init__(
        self,
        owner: OptunaSweeperImpl,
        study: optuna.Study,
        space: search_space.SearchSpace,
        objectives: list[str],
        storage_url: str,
        parent_run_id: str,
        pruner_spec: dict,
        job_storage_url: str | None = None,
        mlflow_uri: str = "",
    ) -> None:
        self.owner, self.study, self.space, self.objectives = owner, study, space, objectives
        self.storage_url, self.parent_run_id, self.pruner_spec = storage_url, parent_run_id, pruner_spec
        # What the jobs are told: no password (see store.password_to_environment).
        self.job_storage_url = job_storage_url or storage_url
        self.mlflow_uri = mlflow_uri
        self.started = time.monotonic()
        self.job_idx = 0
        self.n_trials, self.n_jobs = 0, 1
        self.durations: list[float] = []  # seconds of each trial this process told

    def best_trials(self) -> list[optuna.trial.FrozenTrial]:
        if not self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return []
        if len(self.objectives) == 1:
            return [self.study.best_trial]
        return sorted(self.study.best_trials, key=lambda t: t.number)

    def loop(self, n_trials: int, timeout: float | None, n_jobs: int) -> list[Sequence[JobReturn]]:
        self.n_trials, self.n_jobs = n_trials, n_jobs
        returns = []
        heartbeat = studies.heartbeat_interval(self.study)
        while True:
            self.fail_orphans()
            finished, running = studies.count(self.study)
            remaining = n_trials - finished - running
            if remaining <= 0 and running and heartbeat:
                # Other workers' trials are still running: wait until they end, or until their
                # heartbeat stops and they are failed, so the study never ends with a trial RUNNING.
                time.sleep(min(heartbeat, 5))
                continue
            if remaining <= 0:
                break
            if timeout is not None and time.monotonic() - self.started >= timeout:
                log.info("timeout of %ss reached: no new trial", timeout)
                break
            # A server that stopped answering gets MLflow's retry budget to come back; then the
            # sweep stops before it starts a trial that could only fail.
            wait_until_alive(self.mlflow_uri)
            trials: list[optuna.Trial] = []
            try:
                with storage_calls(self.storage_url, "asking for trials"):
                    trials, batch = self._ask(min(n_jobs, remaining), n_trials, trials)
                if not trials:
                    break  # other workers took the last trials
                with studies.Heartbeat(self.study._storage, [t._trial_id for t in trials], heartbeat), \
                        console.quiet_launcher(self.owner.launcher, self.owner._verbose()):
                    results = self.owner.launcher.launch(batch, initial_job_idx=self.job_idx)
                self.job_idx += len(batch)
                broken = None
                with storage_calls(self.storage_url, "recording the trials' results"):
                    for trial, result in zip(trials, results):
                        broken = broken or self._tell(trial, result)
                if broken is not None:
                    raise broken
            except BaseException as err:
                # Ctrl-C, a store that stopped working or a launcher failure: whatever this
                # batch had not finished is FAIL.
                self._fail_unfinished(trials, err)
                raise
            returns.append(results)
        return returns

    def _fail_unfinished(self, trials: list[optuna.Trial], err: BaseException) -> None:
        """FAIL the trials of a batch ``err`` interrupted (those not told yet). After Ctrl-C or a
        store failure, which are not the trials' fault, each is retried with the same parameters
        when the command runs again (like a trial whose worker was killed), and only the retry
        counts. Best effort: the storage itself may be what failed (its trials are then failed
        and retried as orphans on resume)."""
        interrupted = isinstance(err, KeyboardInterrupt)
        reason = "interrupted (Ctrl-C)" if interrupted else str(err) if isinstance(err, StoreError) else one_line(err)
        failed = [trial.number for trial in trials if self._tell_fail(trial, reason)]
        if not failed or not (interrupted or isinstance(err, StoreError)):
            return
        try:
            for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
                if frozen.number in failed:
                    studies.retry(self.study, frozen)
        except Exception:
            pass

    def fail_orphans(self) -> None:
        """FAIL the trials whose sweeper died or stopped beating, with a progress line each."""
        for trial in studies.fail_orphaned_trials(self.study):
            reason = self.study._storage.get_trial(trial._trial_id).user_attrs.get(studies.REASON)
            log.info("trial %d FAIL %s | %s", trial.number,
                     reason or "its sweeper stopped sending heartbeats", _retry_note(trial))

    def _ask(
        self, n: int, n_trials: int, trials: list[optuna.Trial]
    ) -> tuple[list[optuna.Trial], list[list[str]]]:
        """Ask up to ``n`` trials into ``trials`` (the caller fails them if anything goes wrong)."""
        storage = self.study._storage
        batch = []
        for _ in range(n):
            with budget_lock(self.storage_url, self.study.study_name) as locked:
                finished, running = studies.count(self.study)
                if finished + running >= n_trials:
                    break  # other workers took the last trials
                trial = self.study.ask()
            if not locked and not studies.within_budget(self.study, trial, n_trials):
                # No lock on this database, and workers sharing it counted, then asked, at the
                # same moment: this one is past the budget. Hand it back (WAITING, no params
                # yet); the next ask anywhere reuses it, or a retry of a trial whose worker died
                # takes it over.
                storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
                break
            trials.append(trial)
            studies.mark_owner(self.study, trial._trial_id)
            storage.set_trial_system_attr(trial._trial_id, trial_link.PRUNER_ATTR, self.pruner_spec)
            overrides = self.space.suggest(trial, self.owner._compose_once)
            storage.set_trial_system_attr(trial._trial_id, studies.OVERRIDES, overrides)
            identity = trial_link.overrides_for(
                self.job_storage_url, self.study.study_name, trial._trial_id, trial.number, self.parent_run_id
            )
            batch.append(overrides + identity)
        return trials, batch

    def _tell_fail(self, trial: optuna.Trial, reason: str) -> bool:
        """FAIL ``trial`` unless it is already finished (told before the interruption); whether
        this call failed it."""
        try:
            trial.set_user_attr(studies.REASON, reason)
            self.study.tell(trial, state=TrialState.FAIL)
        except Exception:
            return False
        return True

    def _tell(self, trial: optuna.Trial, result: JobReturn) -> StoreError | None:
        """Tell ``trial`` how its job ended, with a progress line; a job that found the tracking
        store or the storage broken is not told (the sweep stops, ``_fail_unfinished``): its
        StoreError is returned instead."""
        if result.status != JobStatus.COMPLETED and isinstance(result._return_value, StoreError):
            return result._return_value
        state, values, metrics, run_id, reason = self._outcome(result)
        lost = result.status != JobStatus.COMPLETED and isinstance(result._return_value, JobLost)
        if run_id:
            trial.set_user_attr(studies.RUN_ID, run_id)
        if metrics:
            trial.set_user_attr(studies.METRICS, metrics)
        if reason:
            trial.set_user_attr(studies.REASON, reason)
        try:
            if state == TrialState.COMPLETE:
                self.study.tell(trial, values)
            else:
                self.study.tell(trial, state=state)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning("trial %d was already finished by another process", trial.number)
            lost = False  # and retried by it, if it had to be
        except RuntimeError as err:
            # GridSampler calls Study.stop() once the grid is covered, which only works inside
            # Study.optimize; the trial is already told, and the loop stops at the grid's size.
            if "Study.stop" not in str(err):
                raise
        if lost:
            # Its job was killed, like a worker that died: one retry with the same parameters.
            frozen = self.study._storage.get_trial(trial._trial_id)
            studies.retry(self.study, frozen)
            reason = f"{reason} | {_retry_note(frozen)}"
        self._progress(trial, state, values, reason)
        return None

    def _outcome(self, result: JobReturn) -> tuple[TrialState, list[float] | None, dict, str | None, str | None]:
        if result.status != JobStatus.COMPLETED:
            error = result._return_value
            return TrialState.FAIL, None, {}, None, str(error) if isinstance(error, JobLost) else one_line(error)
        ret = result._return_value
        if not isinstance(ret, dict) or ret.get("state") not in ("COMPLETE", "PRUNED", "FAIL"):
            return TrialState.FAIL, None, {}, None, f"the task function returned {type(ret).__name__}, not a trial result"
        metrics = {k: float(v) for k, v in (ret.get("metrics") or {}).items() if isinstance(v, (int, float))}
        run_id, reason = ret.get("run_id"), ret.get("reason")
        if ret["state"] == "PRUNED":
            return TrialState.PRUNED, None, metrics, run_id, reason
        if ret["state"] == "FAIL":
            return TrialState.FAIL, None, metrics, run_id, reason or "failed"
        values = []
        for name in self.objectives:
            value = metrics.get(name)
            if value is None or not math.isfinite(value):
                why = f"objective {name} is {'missing' if value is None else value}"
                return TrialState.FAIL, None, metrics, run_id, why
            values.append(value)
        return TrialState.COMPLETE, values, metrics, run_id, None

    def _progress(self, live: optuna.Trial, state: TrialState, values: list[float] | None, reason: str | None) -> None:
        trial = self.study._storage.get_trial(live._trial_id)
        number = trial.number
        took = trial.duration.total_seconds() if trial.duration else 0.0
        if values is not None:
            shown = " ".join(f"{m}={v:.6g}" for m, v in zip(self.objectives, values))
        elif state == TrialState.PRUNED and trial.intermediate_values:
            step = max(trial.intermediate_values)
            shown = f"{self.objectives[0]}={trial.intermediate_values[step]:.6g} at epoch {step}"
        else:
            shown = reason or ""
        best = self.best_trials()
        if not best:
            best_text = "best none yet"
        elif len(self.objectives) == 1:
            best_text = f"best {best[0].value:.6g} (#{best[0].number})"
        else:
            best_text = f"Pareto front {len(best)} trial{'s' if len(best) > 1 else ''}"
        finished, _ = studies.count(self.study)
        self.durations.append(took)
        eta = console.eta(self.durations, self.n_trials - finished, self.n_jobs)
        log.info("%s", console.progress_line(number, state, shown, best_text, took, finished, self.n_trials, eta))


def _retry_note(failed: optuna.trial.FrozenTrial) -> str:
    """What happens next to a trial whose worker or job died (``studies.retry``)."""
    if studies.is_retried(failed):
        return "retried once with the same parameters"
    return "not retried again: it was itself a retry"
