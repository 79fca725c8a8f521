"""The sweep's MLflow parent run: found or created per study, repaired, and given the results.

The sweeper process uses ``MlflowClient`` only (never ``mlflow.start_run``), so the fluent
"active run" of an in-process job is never disturbed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from sweeper.sweep import study as study_attrs
from sweeper.tracking import study_plots
from sweeper.tracking.mlflow_run import environment_tags
from sweeper.tracking.tags import (
    BEST_RUN_TAG, BEST_TRIAL_TAG, FAIL_REASON_TAG, NOTE_TAG, PARENT_TAG, PARETO_TAG, STATE_TAG, STUDY_TAG, TRIAL_TAG,
)

log = logging.getLogger(__name__)

# How long a worker that did not create the study waits for its creator to name the parent run.
_WAIT_FOR_PARENT_SECONDS = 30.0


def _live_run(client: Any, run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:  # deleted, or from another tracking store
        return False


def _search_by_study(client: Any, experiment_id: str, study_name: str) -> str | None:
    escaped = study_name.replace("'", "\\'")
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{STUDY_TAG}` = '{escaped}'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def find_or_create(
    client: Any,
    experiment_id: str,
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    created_study: bool,
    tags: dict[str, str],
) -> str:
    """The parent run of ``study``: its id is kept in the study, the single source of truth.

    The worker whose call created the study (the storage makes that atomic) creates the run;
    workers that loaded it wait for the id to appear, so two workers starting together never
    make two parents. A resumed study without a live parent (other tracking store, parent
    deleted) gets one found by the ``sweeper.study`` tag, or a new one. A new study always gets
    a new parent, even where an earlier study of the same name left one (its Optuna storage
    deleted): its trials are numbered from 0 again and must not join the old ones.
    """
    study_id = storage.get_study_id_from_name(study.study_name)

    def recorded() -> str | None:
        run_id = storage.get_study_system_attrs(study_id).get(study_attrs.PARENT_RUN_ID)
        return run_id if _live_run(client, run_id) else None

    run_id = recorded()
    if run_id is None and not created_study:
        deadline = time.monotonic() + _WAIT_FOR_PARENT_SECONDS
        while run_id is None and time.monotonic() < deadline:
            if storage.get_study_system_attrs(study_id).get(study_attrs.PARENT_RUN_ID):
                run_id = recorded()
                break
            time.sleep(0.5)
    if run_id is None and not created_study:
        run_id = _search_by_study(client, experiment_id, study.study_name)
    if run_id is None and created_study and (earlier := _search_by_study(client, experiment_id, study.study_name)):
        # Said, not silent: a deleted, emptied (0-byte) or other storage looks like this.
        log.warning(
            "study '%s' is new in this storage, but MLflow has the parent run %s of an earlier study of "
            "that name: starting over with a new parent run (to resume that study, point "
            "hydra.sweeper.storage at its storage)", study.study_name, earlier,
        )
    if run_id is None:
        run = client.create_run(experiment_id, run_name=study.study_name, tags={
            **environment_tags(),
            STUDY_TAG: study.study_name,
            NOTE_TAG: f"Optuna sweep '{study.study_name}': one nested run per trial; the sweep's "
                                   "own metrics (best_*, n_*), its best trial's config and model, and its plots"})
        run_id = run.info.run_id
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


def set_tags(client: Any, run_id: str, tags: dict[str, str], before: dict[str, str]) -> None:
    """Set ``tags`` on the parent run ``run_id`` whose tags were ``before``: those that differ, in
    one batch. Workers starting together write the same new tags at once, and MLflow's SQL store
    then refuses the second insert of a key ("duplicate key value violates unique constraint
    tag_pk", seen with three PostgreSQL workers): a retry finds the row and updates it."""
    from mlflow.entities import RunTag

    changed = [RunTag(key, value) for key, value in tags.items() if before.get(key) != value]
    if changed:
        _retried(lambda: client.log_batch(run_id, tags=changed))


def close_finished_children(client: Any, experiment_id: str, parent_run_id: str, study: optuna.Study) -> None:
    """End every child run still RUNNING whose trial Optuna considers finished.

    A job killed with its sweeper leaves its run RUNNING; its trial is failed on restart, so the
    run is marked FAILED with ``sweeper.state=FAIL`` and the trial's fail reason in
    ``sweeper.fail_reason``.
    """
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    running = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'"
    for run in client.search_runs([experiment_id], filter_string=running, max_results=50000):
        number = run.data.tags.get(TRIAL_TAG)
        trial = trials.get(int(number)) if number is not None and number.isdigit() else None
        state = trial.state if trial is not None else None
        if state not in study_attrs.FINISHED:
            continue
        if state == TrialState.FAIL:
            reason = trial.user_attrs.get(study_attrs.REASON) or "its job ended without reporting (killed)"
            client.set_tag(run.info.run_id, STATE_TAG, "FAIL")
            client.set_tag(run.info.run_id, FAIL_REASON_TAG, reason)
            client.set_terminated(run.info.run_id, status="FAILED")
        else:
            client.set_terminated(run.info.run_id, status="FINISHED")


def _counts(client: Any, run_id: str, study: optuna.Study) -> None:
    """The sweep's own numbers: ``n_complete``, ``n_pruned``, ``n_failed`` (every trial of the
    study, a retried one included)."""
    from mlflow.entities import Metric

    states = [t.state for t in study.get_trials(deepcopy=False)]
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(f"n_{name}", float(states.count(state)), now, 0) for name, state in
                                      (("complete", TrialState.COMPLETE), ("pruned", TrialState.PRUNED),
                                       ("failed", TrialState.FAIL))])


def _log_best(client: Any, run_id: str, best: list[optuna.trial.FrozenTrial],
              best_params: dict[str, str] | None) -> None:
    """The best trial (``best[0]``; ``best``: the Pareto front of several objectives) on the
    parent: its metrics as ``best_<name>`` (never a trial's own metric name, so sorting the runs
    table by ``val_rmse`` lists trials only), its number, and its config as params under the
    children's keys (its run's own params; else ``best_params``, the flattened config; else
    Optuna's parameter names)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    first = best[0]
    now = int(time.time() * 1000)
    metrics = first.user_attrs.get(study_attrs.METRICS) or {}
    metric_list = [Metric(f"best_{k}", float(v), now, 0) for k, v in metrics.items() if isinstance(v, (int, float))]
    metric_list.append(Metric("best_trial", float(first.number), now, 0))
    client.log_batch(run_id, metrics=metric_list)
    params = [Param(k, str(v)) for k, v in (_run_params(client, first) or best_params or first.params).items()]
    try:
        client.log_batch(run_id, params=params)
    except MlflowException:
        # A resumed study found a new best: MLflow params cannot change, the tags below do.
        log.info("best params changed since the last run of this study; see the best.* tags")
    tags = {f"best.{k}": str(v) for k, v in first.params.items()}
    tags[BEST_TRIAL_TAG] = str(first.number)
    if first.user_attrs.get(study_attrs.RUN_ID):
        tags[BEST_RUN_TAG] = str(first.user_attrs[study_attrs.RUN_ID])
    if len(first.values) > 1:
        tags[PARETO_TAG] = ",".join(str(t.number) for t in best)
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])


def _run_params(client: Any, trial: optuna.trial.FrozenTrial) -> dict[str, str]:
    """The params the trial's own MLflow run logged (what its data decided: ``objective``,
    ``data.task``, … resolved from ``auto``), or {} when there is no such run."""
    run_id = trial.user_attrs.get(study_attrs.RUN_ID)
    if not run_id:
        return {}
    try:
        return dict(client.get_run(str(run_id)).data.params)
    except Exception:
        return {}


def _retried(write: Callable[[], Any], attempts: int = 4) -> None:
    """Run ``write``, retrying when a concurrent worker wrote the same parent row first (MLflow's
    SQL store raises an integrity error for the second insert of a key, which a retry turns into
    an update); the last attempt's error is raised."""
    for attempt in range(attempts):
        try:
            write()
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _retrying(write: Any, attempts: int = 4) -> None:
    """`_retried`, for the best trial that workers finishing together log to the same parent: a
    write that still fails is a warning, not the sweep's end."""
    try:
        _retried(write, attempts)
    except Exception as err:
        log.warning("could not log the best trial to the parent run: %s", str(err).splitlines()[0])


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
    from omegaconf import OmegaConf

    from sweeper.tracking.mlflow_run import flatten

    best_params = None
    if best_config_yaml is not None:
        best_params = flatten(OmegaConf.to_container(OmegaConf.create(best_config_yaml), resolve=False))
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
        _retrying(lambda: _counts(client, run_id, study))
        if complete:
            _retrying(lambda: _log_best(client, run_id, best, best_params))
            if plotted is None:
                study_plots.write_plots(study, objectives, out)
            if len(objectives) > 1:
                _pareto_front(best, objectives).to_csv(out / "pareto_front.csv", index=False)
            if best_config_yaml is not None:
                (out / "best_config.yaml").write_text(best_config_yaml)
        result = meanwhile() if meanwhile is not None else None
        records = _plots_drawn(plotted, Path(elsewhere), out)
        if plotted is not None and records is None:
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
    from sweeper.errors import one_line

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


def _pareto_front(front: list[optuna.trial.FrozenTrial], objectives: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"number": t.number, "run_id": t.user_attrs.get(study_attrs.RUN_ID),
                          **dict(zip(objectives, t.values)), **t.params} for t in front])


def finish(client: Any, run_id: str, status: str = "FINISHED") -> None:
    client.set_terminated(run_id, status=status)
