"""What the report reads from MLflow: the store, the sweep's parent run, its trial runs and curves.

Everything goes through ``MlflowClient``: child runs come from ``search_runs`` on the
``mlflow.parentRunId`` tag (paged), and each curve is one ``get_metric_history`` call per run and
metric (MLflow pages through long histories inside that call), never one call per epoch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sweeper import CONF_DIR
from sweeper.errors import SweeperError, one_line
from sweeper.tracking import existing_store
from sweeper.tracking.tags import PARENT_TAG, STUDY_TAG

#: The per-epoch curves the report needs (step = epoch); ``lr`` is not read.
CURVES = ("train_loss", "val_loss", "test_loss")

_HISTORY_THREADS = 8  # histories are independent reads; threads hide an HTTP store's latency


class ReportError(SweeperError):
    """An unknown store, experiment or run: reported as one line, exit status 2."""


@dataclass
class TrialRun:
    """One MLflow run as the report needs it: the run itself and its curves (one value per epoch)."""

    run: Any  # mlflow.entities.Run
    curves: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Sweep:
    """A sweep's parent run (or a single run reported on its own) and its trial runs."""

    tracking_uri: str
    experiment_name: str
    run: Any  # the parent run, or the single run
    trials: list[TrialRun]
    single: bool  # True when ``run`` is a plain run reported as a one-row sweep


@lru_cache(maxsize=1)
def default_experiment() -> str:
    """The experiment ``python -m sweeper`` logs to with the default config (``car_prices``)."""
    from hydra import compose, initialize_config_dir

    import sweeper.config  # noqa: F401  registers the schema and the data_dir resolver
    from sweeper.tracking import experiment_name

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return experiment_name(compose(config_name="config"))


def _latest_sweep(client: Any, experiment_ids: list[str]) -> Any | None:
    """The most recently started run tagged ``sweeper.study`` in ``experiment_ids``, or None."""
    runs = client.search_runs(experiment_ids, filter_string=f"tags.`{STUDY_TAG}` LIKE '%'",
                              order_by=["attributes.start_time DESC"], max_results=1) if experiment_ids else []
    return runs[0] if runs else None


def find_sweep(client: Any, experiment: str | None, run_id: str | None) -> tuple[Any, str]:
    """The run to report on and its experiment's name.

    ``run_id`` given: that run (its experiment must be ``experiment`` when both are given).
    Otherwise the most recently started run tagged ``sweeper.study`` in ``experiment`` (None:
    the default config's experiment, or when the store has none of that name, any experiment).
    """
    from mlflow.exceptions import MlflowException

    if run_id:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise ReportError(f"no MLflow run with id {run_id!r} in {client.tracking_uri} "
                              "(another store? give --tracking-uri)") from None
        run_experiment = client.get_experiment(run.info.experiment_id).name
        if experiment and experiment != run_experiment:
            raise ReportError(f"run {run_id} belongs to experiment {run_experiment!r}, not {experiment!r}")
        return run, run_experiment

    given = experiment
    experiment = experiment or default_experiment()
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage == "deleted":
        experiments = client.search_experiments()
        latest = _latest_sweep(client, [e.experiment_id for e in experiments]) if given is None else None
        if latest is not None:  # no default experiment here: the latest sweep of any experiment
            return latest, client.get_experiment(latest.info.experiment_id).name
        names = sorted(e.name for e in experiments)
        raise ReportError(
            f"no MLflow experiment named {experiment!r} in {client.tracking_uri} "
            f"(experiments: {', '.join(names) or 'none'}; pass --experiment NAME)"
        )
    latest = _latest_sweep(client, [found.experiment_id])
    if latest is None:
        raise ReportError(
            f"experiment {experiment!r} has no sweep (no run tagged {STUDY_TAG}); "
            "run `python -m sweeper -m` or pass --sweep RUN_ID"
        )
    return latest, experiment


def child_runs(client: Any, parent: Any) -> list[Any]:
    """Every run whose ``mlflow.parentRunId`` is ``parent``, oldest first (all pages)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'",
            order_by=["attributes.start_time ASC"],
            max_results=1000,
            page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def curves(client: Any, run_id: str) -> dict[str, list[float]]:
    """``{"train_loss": [...], "val_loss": [...], "test_loss": [...], "val_loss_std": [...]}``,
    index i = epoch i + 1 (``val_loss_std``: a cross-validated run's spread over its folds, else []).

    One ``get_metric_history`` call per metric. A step logged twice keeps its first value (older
    runs logged the final network's ``val_loss`` at their last epoch too); a missing step is NaN.
    """
    out: dict[str, list[float]] = {}
    for key in (*CURVES, "val_loss_std"):
        by_step: dict[int, float] = {}
        for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)):
            by_step.setdefault(int(metric.step), float(metric.value))
        last = max(by_step, default=0)
        out[key] = [by_step.get(step, float("nan")) for step in range(1, last + 1)]
    return out


def load_sweep(tracking_uri: str | None = None, *, experiment: str | None = None,
               sweep_id: str | None = None) -> Sweep:
    """Read a sweep (or a single run) and every trial's curves from MLflow.

    ``tracking_uri`` None resolves as ``python -m sweeper`` does (``sweeper.tracking.tracking_uri``).
    A run with children is a sweep; a run tagged ``sweeper.study`` without children is a sweep
    with no trials yet (an error); any other run is reported on its own, as one row.
    """
    try:
        client, uri = existing_store(tracking_uri)
    except SweeperError as error:
        raise ReportError(str(error)) from None
    try:
        run, experiment_name = find_sweep(client, experiment, sweep_id)
        children = child_runs(client, run)
    except ReportError:
        raise
    except Exception as error:  # an unreachable server, a broken database, ...
        raise ReportError(f"cannot read MLflow at {uri}: {one_line(error)}") from None
    single = not children
    if single and STUDY_TAG in run.data.tags:
        raise ReportError(f"sweep {run.info.run_id} has no trial runs yet")
    runs = children or [run]
    with ThreadPoolExecutor(max_workers=_HISTORY_THREADS) as pool:
        histories = list(pool.map(lambda r: curves(client, r.info.run_id), runs))
    trials = [TrialRun(r, h) for r, h in zip(runs, histories)]
    return Sweep(uri, experiment_name, run, trials, single)

