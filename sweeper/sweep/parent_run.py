"""The sweep's MLflow parent run: found or created per study, repaired, and given the results
(written by :mod:`sweeper.tracking.parent_run`)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

from sweeper.errors import one_line
from sweeper.sweep import study as study_attrs
from sweeper.tracking import parent_run as mlflow_parent, study_plots
from sweeper.tracking.mlflow_run import flatten
from sweeper.tracking.parent_run import set_tags
from sweeper.tracking.tags import STUDY_TAG

log = logging.getLogger(__name__)

# How long a worker that did not create the study waits for its creator to name the parent run.
_WAIT_FOR_PARENT_SECONDS = 30.0


def find_or_create(
    client: Any,
    experiment_id: str,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    created_study: bool,
    tags: dict[str, str],
) -> str:
    """The parent run of ``study``: its id is kept in the study, the single source of truth.

    The worker whose call created the study (atomic in the storage) creates the run; workers
    that loaded it wait for the id, so workers starting together never make two parents. A
    resumed study without a live parent gets one found by the ``sweeper.study`` tag, or a new
    one. A new study always gets a new parent, even where an earlier study of that name left
    one: its trials are numbered from 0 again and must not join the old ones.
    """
    study_id = storage.get_study_id_from_name(study.study_name)

    def recorded() -> str | None:
        run_id = storage.get_study_system_attrs(study_id).get(study_attrs.PARENT_RUN_ID)
        return run_id if mlflow_parent.live_run(client, run_id) else None

    run_id = recorded()
    if run_id is None and not created_study:
        deadline = time.monotonic() + _WAIT_FOR_PARENT_SECONDS
        while time.monotonic() < deadline:
            if storage.get_study_system_attrs(study_id).get(study_attrs.PARENT_RUN_ID):
                run_id = recorded()
                break
            time.sleep(0.5)
        run_id = run_id or mlflow_parent.search_by_study(client, experiment_id, study.study_name)
    if run_id is None and created_study and (earlier := mlflow_parent.search_by_study(client, experiment_id,
                                                                                       study.study_name)):
        # Said, not silent: a deleted, emptied (0-byte) or other storage looks like this.
        log.warning(
            "study '%s' is new in this storage, but MLflow has the parent run %s of an earlier study of "
            "that name: starting over with a new parent run (to resume that study, point "
            "hydra.sweeper.storage at its storage)", study.study_name, earlier,
        )
    if run_id is None:
        run_id = mlflow_parent.create(client, experiment_id, study.study_name)
    storage.set_study_system_attr(study_id, study_attrs.PARENT_RUN_ID, run_id)

    client.update_run(run_id, status="RUNNING")
    before = client.get_run(run_id).data.tags
    for key, value in tags.items():
        if before.get(key) not in (None, value):
            # Said, not silent: the study goes on with other settings; the tag keeps the latest.
            log.info("study '%s' resumed with %s=%s (it ran with %s before)", study.study_name,
                     key.replace("sweeper.", "hydra.sweeper."), value, before[key])
    set_tags(client, run_id, {STUDY_TAG: study.study_name, **tags}, before)
    return run_id


def close_finished_children(client: Any, experiment_id: str, parent_run_id: str, study: optuna.Study) -> None:
    """End every child run still RUNNING whose trial Optuna considers finished (a job killed with
    its sweeper leaves it so): a FAIL trial's run FAILED, with its reason in ``sweeper.fail_reason``."""
    ended = {t.number: (t.user_attrs.get(study_attrs.REASON) or "its job ended without reporting (killed)")
             if t.state == TrialState.FAIL else None
             for t in study.get_trials(deepcopy=False, states=study_attrs.FINISHED)}
    mlflow_parent.close_children(client, experiment_id, parent_run_id, ended)


def _log_best(client: Any, run_id: str, best: list[optuna.trial.FrozenTrial], best_config_yaml: str | None) -> None:
    """The best trial (``best[0]``; ``best``: the Pareto front of several objectives) on the
    parent, its config as params under the children's keys: its run's own params (what its data
    decided: ``objective``, ``data.task``, … resolved from ``auto``); else its config
    flattened; else Optuna's parameter names."""
    first = best[0]
    trial_run_id = first.user_attrs.get(study_attrs.RUN_ID)
    config = best_config_yaml and flatten(OmegaConf.to_container(OmegaConf.create(best_config_yaml), resolve=False))
    params = mlflow_parent.run_params(client, trial_run_id) or config or first.params
    mlflow_parent.log_best(client, run_id, first.number, first.user_attrs.get(study_attrs.METRICS) or {}, params,
                           first.params, trial_run_id, [t.number for t in best] if len(first.values) > 1 else None)


def log_results(
    client: Any,
    run_id: str,
    study: optuna.Study,
    objectives: list[str],
    best_config_yaml: str | None,
    beside: Callable[..., Any] | None = None,
    meanwhile: Callable[[], Any] | None = None,
) -> Any:
    """Give the parent the trial counts, the best trial, ``best_config.yaml``, plots,
    ``trials.csv``, Pareto front. The plots (~0.7 s: Optuna's history plot, PED-ANOVA, the
    importances chart) are drawn by ``beside`` (the launcher's, ``sweeper.sweep.launching``: on
    another core) while this process does the rest and then ``meanwhile`` (the best model);
    without it, here. Returns what ``meanwhile`` returned."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory(
            prefix="sweeper-plots-", ignore_cleanup_errors=True) as elsewhere:
        out = Path(tmp)
        best = study_attrs.best_trials(study, objectives)
        complete, plotted = bool(best), None
        if complete and beside is not None:
            # Drawn into a folder of their own: after a failure or a timeout, what the other
            # process still writes never reaches the run.
            trials = study.get_trials(deepcopy=False)
            plotted = beside(study_plots.write_plots_of_trials, trials, study.directions, objectives, Path(elsewhere))
        study.trials_dataframe().to_csv(out / "trials.csv", index=False)
        states = [t.state for t in study.get_trials(deepcopy=False)]
        counts = {f"n_{name}": states.count(state) for name, state in
                  (("complete", TrialState.COMPLETE), ("pruned", TrialState.PRUNED), ("failed", TrialState.FAIL))}
        mlflow_parent.retrying(lambda: mlflow_parent.log_counts(client, run_id, counts))
        if complete:
            mlflow_parent.retrying(lambda: _log_best(client, run_id, best, best_config_yaml))
            if len(objectives) > 1:
                import pandas as pd

                pd.DataFrame([{"number": t.number, "run_id": t.user_attrs.get(study_attrs.RUN_ID),
                               **dict(zip(objectives, t.values)), **t.params} for t in best]
                             ).to_csv(out / "pareto_front.csv", index=False)
            if best_config_yaml is not None:
                (out / "best_config.yaml").write_text(best_config_yaml)
        result = meanwhile() if meanwhile is not None else None
        records = _plots_drawn(plotted, Path(elsewhere), out)
        if complete and records is None:  # no other process drew them, or it failed
            study_plots.write_plots(study, objectives, out)
        for name, level, message in records or []:
            logging.getLogger(name).log(level, "%s", message)
        client.log_artifacts(run_id, str(out))
    return result


#: How long the sweep's end waits for its plots drawn in another process (they take ~1 s).
PLOTS_TIMEOUT = 60


def _plots_drawn(plotted: Any, folder: Path, out: Path) -> list[tuple[str, int, str]] | None:
    """The log records of the plots another process drew into ``folder``, the plots moved to
    ``out``; None when it failed or took over ``PLOTS_TIMEOUT`` s (said in a warning: they are
    then drawn here)."""
    if plotted is None:
        return None
    try:
        records = plotted.result(timeout=PLOTS_TIMEOUT)
    except Exception as err:
        log.warning("the parent run's plots are drawn in the sweep's process: the process drawing them %s",
                    "took too long" if isinstance(err, TimeoutError) else f"failed: {one_line(err)}")
        return None
    for path in folder.iterdir():
        shutil.move(path, out / path.name)
    return records
