"""The Optuna sweeper: checks a sweep, opens its study and parent run, runs the loop, sums up.

One call of :meth:`OptunaSweeperImpl.sweep` is one ``python -m sweeper -m``. The study in the
storage is the single source of truth, so one process or many workers sharing a PostgreSQL
storage behave the same.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from sweeper import PROJECT_ROOT
from sweeper.errors import ConfigError, StoreError, SweeperError, one_line
from sweeper.sweep import console, ensemble, launching, parent_run, space as search_space, study as studies, trial_link
from sweeper.sweep.job_configs import JobConfigs
from sweeper.sweep.loop import TrialLoop
from sweeper.sweep.settings import Settings
from sweeper.sweep.storage import is_journal, open_storage, resolve_storage_url
from sweeper import tracking
from sweeper.tracking import DEFAULT_TRACKING_URI, experiment_name
from sweeper.tracking.mlflow_model import log_best_model
from sweeper.tracking.store import ui_links, without_password
from sweeper.tracking.tags import PRUNER_TAG, SAMPLER_TAG, SPACE_TAG

log = logging.getLogger(__name__)

class SweepError(CompactHydraException):
    """A bad setting or search space: Hydra prints just this one line and exits non-zero."""


class OptunaSweeperImpl:
    """Hydra Sweeper logic; ``hydra_plugins.sweeper_optuna.OptunaSweeper`` delegates here."""

    def __init__(self, **settings: Any) -> None:
        self.raw_settings = OmegaConf.create(settings)  # parsed once, as the sweep starts
        self.settings: Settings | None = None
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

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
        self.settings = Settings.parse(self.raw_settings)
        jobs = JobConfigs(self.hydra_context, self.config, self.settings.validator)
        finished = False
        try:
            returns = self._run_sweep(arguments, jobs)
            finished = True
            return returns
        finally:
            launching.close(self.launcher, finished)

    def _run_sweep(self, arguments: list[str], jobs: JobConfigs) -> Any:
        s, cfg, launcher = self.settings, self.config, self.launcher
        assert s is not None
        objective = str(OmegaConf.select(cfg, "objective", default="val_rmse"))
        objectives, directions = studies.objectives_and_directions(
            objective, s.direction, list(s.directions) if s.directions else None)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        checked = jobs.check_beside(search_space.parse(dict(s.params), arguments, parser), launching.beside(launcher))
        tracking.import_store(cfg)  # beside the check, which takes about as long
        space = checked()
        grid = space.grid() if s.sampler.is_grid else None
        s.sampler.build(grid=grid)  # a bad sampler fails here
        base = jobs.base(space)  # the space's fixed overrides alone, composed with or without a preflight
        found = (s.preflight(base, objectives) or {}) if s.preflight is not None else {}  # before the study exists
        resolved = [str(name) for name in found.get("objectives", objectives)]
        if resolved != objectives:  # objective=auto, now known to be val_rmse or val_log_loss
            objectives, directions = studies.objectives_and_directions(
                resolved[0], s.direction, resolved if s.directions else None)

        mlflow_uri = tracking.reach(cfg)  # both stores answer before either is written to
        storage_url, storage = _open_storage(s)
        client, experiment_id = tracking.connect(cfg, mlflow_uri, found.get("description"))
        described = space.described()
        search = OmegaConf.select(cfg, "hydra.runtime.choices.search", default=None)
        study_name = s.study_name or studies.default_name(experiment_name(cfg), search, described, objectives)
        study, created = studies.create_or_load(storage, study_name, directions, s.pruner.build())
        if created and not s.study_name and experiment_name(cfg) in optuna.get_all_study_names(storage):
            log.info("this storage holds a study named '%s' (the default name of earlier versions): "
                     "resume it with hydra.sweeper.study_name=%s", experiment_name(cfg), experiment_name(cfg))
        studies.check_metric_names(study, objectives)
        studies.check_space(study, described)
        study.set_metric_names(objectives)
        study.sampler = s.sampler.build(studies.worker_seed(s.sampler.seed, study, created), grid)
        studies.check_identity(study, {str(k): str(v) for k, v in found.get("identity", {}).items()})
        for line in found.get("lines", []):  # what the data is, said once nothing can refuse the sweep any more
            log.info("%s", line)
        if created and s.start_from_defaults and grid is None:
            self._enqueue_defaults(study, jobs, space)
        tags = {SAMPLER_TAG: s.sampler.name, PRUNER_TAG: s.pruner.name, SPACE_TAG: space.numbers()}
        parent_run_id = parent_run.find_or_create(client, experiment_id, study, storage, created, tags)
        sweep_dir = Path(str(cfg.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")

        run = TrialLoop(study, storage, space, objectives, storage_url=storage_url,
                        identity=trial_link.Identity(storage_url, study.study_name, parent_run_id, s.pruner.text()),
                        mlflow_uri=mlflow_uri, launcher=launcher, compose_once=jobs.compose_once,
                        verbose=self._verbose(), unowned_grace=s.grace_period)
        run.fail_orphans()
        parent_run.close_finished_children(client, experiment_id, parent_run_id, study)
        finished = studies.count(study)[0]
        log.info("study '%s' (%s, sampler %s, pruner %s): %d of %d trials finished; MLflow parent run %s",
                 study.study_name, "new" if created else "resumed", s.sampler.name, s.pruner.name, finished, s.n_trials,
                 parent_run_id)
        n_trials = s.n_trials
        if finished >= n_trials:
            log.info("the study already has %d finished trials: nothing to run (raise hydra.sweeper.n_trials "
                     "for more)", finished)
        if grid is not None and n_trials > (size := math.prod(len(v) for v in grid.values())):
            n_trials = size
            log.info("the grid has %d points: n_trials lowered to match", n_trials)
        status, returns = "FINISHED", []
        try:
            returns = run.loop(n_trials, s.timeout, s.n_jobs)
        except KeyboardInterrupt:
            status = "KILLED"
        except Exception as error:
            # The parent run ends FAILED if MLflow lets it (no write is tried on a tracking store that
            # failed: each would wait for it); the error is what the user reads, not a later MLflow call's.
            if not (isinstance(error, StoreError) and str(error).startswith("mlflow.tracking_uri=")):
                with contextlib.suppress(Exception):
                    client.set_terminated(parent_run_id, status="FAILED")
            if not isinstance(error, StoreError):
                raise
            try:  # a store stopped working: one line says what failed and how to resume
                done = f"{studies.count(study)[0]} of {n_trials} trials finished"
            except Exception:
                done = "finished trials are kept"
            raise SweeperError(f"{error}; the sweep stopped ({done}): rerun the same command to resume once it "
                               "works again")
        parent_run.close_finished_children(client, experiment_id, parent_run_id, study)
        self._finish(run, jobs, client, mlflow_uri, status)
        if status == "KILLED":
            log.info("interrupted: the running trial is FAIL, finished trials are kept; rerun the same command to resume")
            raise SystemExit(130)
        if not studies.best_trials(study, objectives):
            raise ConfigError(studies.why_none_completed(study))
        return returns

    def _enqueue_defaults(self, study: optuna.Study, jobs: JobConfigs, space: search_space.SearchSpace) -> None:
        """Make the new study's first trial the base config (``start_from_defaults``)."""
        values, outside = jobs.base_values(space)
        if not values:
            return
        study.enqueue_trial(values, skip_if_exists=True)
        if outside:
            log.info("trial 0 trains the base config where the space allows it (hydra.sweeper.start_from_defaults); "
                     "sampled, as their base value is not in the space: %s", ", ".join(outside))
        else:
            log.info("trial 0 trains the base config (hydra.sweeper.start_from_defaults)")

    def _finish(self, run: TrialLoop, jobs: JobConfigs, client: Any, mlflow_uri: str, status: str) -> None:
        """Log the sweep's results to its parent run, end it, and print the summary."""
        study, objectives, parent_run_id = run.study, run.objectives, run.identity.parent_run_id
        best = studies.best_trials(study, objectives)
        overrides = best[0].system_attrs.get(studies.OVERRIDES) if best else None
        best_yaml = jobs.yaml(list(overrides)) if overrides is not None else None
        if status == "FINISHED" and not best:
            status = "FAILED"  # the sweep produced nothing to use; its command exits non-zero

        def best_model() -> list[str]:
            if len(objectives) == 1 and best and best[0].user_attrs.get(studies.RUN_ID):
                top = ensemble.members(study, best[0], self.settings.ensemble)
                shown = f"test_{objectives[0].removeprefix('val_')}"
                return log_best_model(client, parent_run_id, top, mlflow_uri, self.settings.register_model,
                                      evaluate=ensemble.test_metrics, shown=shown)
            return []

        try:
            model_lines = parent_run.log_results(client, parent_run_id, study, objectives, best_yaml,
                                                 launching.beside(run.launcher), meanwhile=best_model)
        finally:
            client.set_terminated(parent_run_id, status=status)

        ui = ui_links(mlflow_uri, client.get_run(parent_run_id).info.experiment_id, parent_run_id,
                      objectives[0], study.directions[0] == optuna.study.StudyDirection.MINIMIZE)
        dashboard = run.identity.storage_url
        if is_journal(dashboard) and Path(dashboard).is_relative_to(Path.cwd()):
            dashboard = str(Path(dashboard).relative_to(Path.cwd()))
        default = (DEFAULT_TRACKING_URI, resolve_storage_url(DEFAULT_TRACKING_URI, PROJECT_ROOT))
        store = "" if mlflow_uri in default else f" --tracking-uri {mlflow_uri}"
        for line in console.summary(study, objectives, best, time.monotonic() - run.started, model_lines,
                                    parent_run_id, ui, dashboard, store):
            log.info(line)


def _open_storage(s: Settings) -> tuple[str, optuna.storages.BaseStorage]:
    """(absolute URL, storage) of ``hydra.sweeper.storage``, its password out of the URL
    (`without_password`); one line naming it if it cannot open."""
    given = without_password(s.storage, "hydra.sweeper.storage")
    try:
        url = resolve_storage_url(given, PROJECT_ROOT)
    except OSError as err:
        raise ConfigError(f"hydra.sweeper.storage={given}: cannot create its folder {err.filename}: "
                          f"{err.strerror}") from None
    earlier = Path(url).with_name("optuna.db")
    if is_journal(url) and not Path(url).exists() and earlier.exists():
        shown = f"sqlite:///{earlier.relative_to(PROJECT_ROOT) if earlier.is_relative_to(PROJECT_ROOT) else earlier}"
        log.info("hydra.sweeper.storage=%s is a new journal file; the studies of earlier sweeps are in %s: "
                 "resume one with hydra.sweeper.storage=%s", given, shown, shown)
    try:
        return url, open_storage(url, s.heartbeat_interval, s.grace_period)
    except Exception as err:
        raise ConfigError(f"hydra.sweeper.storage={given}: {one_line(err)}") from None
