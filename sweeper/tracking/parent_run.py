"""The MLflow writes of a sweep's parent run, from plain values (``sweeper.sweep.parent_run``
decides what they are, from the study).

``MlflowClient`` only (never ``mlflow.start_run``), so the fluent "active run" of an in-process
job is never disturbed.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from sweeper.tracking.mlflow_run import environment_tags
from sweeper.tracking.tags import (
    BEST_RUN_TAG, BEST_TRIAL_TAG, FAIL_REASON_TAG, NOTE_TAG, PARENT_TAG, PARETO_TAG, STATE_TAG, STUDY_TAG, TRIAL_TAG,
)

log = logging.getLogger(__name__)


def live_run(client: Any, run_id: str | None) -> bool:
    if not run_id:
        return False
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except Exception:  # deleted, or from another tracking store
        return False


def search_by_study(client: Any, experiment_id: str, study_name: str) -> str | None:
    """The first parent run tagged with ``study_name``, or None."""
    escaped = study_name.replace("'", "\\'")
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{STUDY_TAG}` = '{escaped}'",
                              order_by=["attributes.start_time ASC"], max_results=1)
    return runs[0].info.run_id if runs else None


def create(client: Any, experiment_id: str, study_name: str) -> str:
    """A new parent run for ``study_name``; its id."""
    run = client.create_run(experiment_id, run_name=study_name, tags={
        **environment_tags(),
        STUDY_TAG: study_name,
        NOTE_TAG: f"Optuna sweep '{study_name}': one nested run per trial; the sweep's "
                  "own metrics (`best_…`, `n_…`, `ensemble_…`), its best trial's config, its model (the "
                  "best trial's, or the mean of the top trials': `sweeper.model_run_id`), and its plots"})
    return run.info.run_id


def set_tags(client: Any, run_id: str, tags: dict[str, str], before: dict[str, str]) -> None:
    """Set ``tags`` on the parent run ``run_id`` whose tags were ``before``: those that differ, in
    one batch. Workers starting together write the same new tags at once, and MLflow's SQL store
    then refuses the second insert of a key ("duplicate key value violates unique constraint
    tag_pk", seen with three PostgreSQL workers): a retry finds the row and updates it."""
    from mlflow.entities import RunTag

    changed = [RunTag(key, value) for key, value in tags.items() if before.get(key) != value]
    if changed:
        retried(lambda: client.log_batch(run_id, tags=changed))


def close_children(client: Any, experiment_id: str, parent_run_id: str, ended: dict[int, str | None]) -> None:
    """End the child runs still RUNNING whose trial number is in ``ended``: FAILED, with
    ``sweeper.state=FAIL`` and ``sweeper.fail_reason``, where it maps to a fail reason; else FINISHED.
    Surviving workers may close the same run at once: the tags are written `retried`."""
    from mlflow.entities import RunTag

    running = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and attributes.status = 'RUNNING'"
    for run in client.search_runs([experiment_id], filter_string=running, max_results=50000):
        number = run.data.tags.get(TRIAL_TAG)
        if number is None or not number.isdigit() or int(number) not in ended:
            continue
        reason = ended[int(number)]
        if reason is not None:
            tags = [RunTag(STATE_TAG, "FAIL"), RunTag(FAIL_REASON_TAG, reason)]
            retried(lambda: client.log_batch(run.info.run_id, tags=tags))
        client.set_terminated(run.info.run_id, status="FINISHED" if reason is None else "FAILED")


def log_counts(client: Any, run_id: str, counts: dict[str, float]) -> None:
    """The sweep's own numbers as metrics, e.g. ``{"n_complete": 12}`` or its ensemble's ``ensemble_test_rmse``."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(name, float(n), now, 0) for name, n in counts.items()])


def log_best(client: Any, run_id: str, number: int, metrics: dict[str, Any], params: dict[str, Any],
             trial_params: dict[str, Any], trial_run_id: str | None, pareto: list[int] | None) -> None:
    """The best trial ``number`` on the parent: its ``metrics`` as ``best_<name>`` (never a trial's
    own metric name, so sorting the runs table by ``val_rmse`` lists trials only), its number,
    ``params`` under the children's keys, its Optuna ``trial_params`` as ``best.*`` tags, its run
    and the Pareto front's trial numbers (several objectives)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    now = int(time.time() * 1000)
    metric_list = [Metric(f"best_{k}", float(v), now, 0) for k, v in metrics.items() if isinstance(v, (int, float))]
    metric_list.append(Metric("best_trial", float(number), now, 0))
    client.log_batch(run_id, metrics=metric_list)
    try:
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    except MlflowException:
        # A resumed study found a new best: MLflow params cannot change, the tags below do.
        log.info("best params changed since the last run of this study; see the best.* tags")
    tags = {f"best.{k}": str(v) for k, v in trial_params.items()}
    tags[BEST_TRIAL_TAG] = str(number)
    if trial_run_id:
        tags[BEST_RUN_TAG] = str(trial_run_id)
    if pareto is not None:
        tags[PARETO_TAG] = ",".join(str(n) for n in pareto)
    client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])


def run_params(client: Any, run_id: str | None) -> dict[str, str]:
    """The params run ``run_id`` logged, or {} when there is no such run."""
    if not run_id:
        return {}
    try:
        return dict(client.get_run(str(run_id)).data.params)
    except Exception:
        return {}


def retried(write: Callable[[], Any], attempts: int = 4) -> None:
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


def retrying(write: Callable[[], Any], attempts: int = 4) -> None:
    """`retried`, for the best trial that workers finishing together log to the same parent: a
    write that still fails is a warning, not the sweep's end."""
    try:
        retried(write, attempts)
    except Exception as err:
        log.warning("could not log the best trial to the parent run: %s", str(err).splitlines()[0])
