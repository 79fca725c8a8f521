"""One MLflow run written through ``MlflowClient`` in a handful of batched calls.

Params go in chunks of 100 and metrics are buffered and sent with ``log_batch`` (at most 1000 per
call, MLflow's limit), so a 200-epoch run costs a few SQL/HTTP round trips, not one per value.
The client (not MLflow's fluent, process-global API) keeps in-process sweep jobs independent.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

from sweeper import CHECKOUT
from sweeper.tracking.store import is_store_failure, lost_a_race, store_error
from sweeper.tracking.tags import (
    GIT_COMMIT_TAG, GIT_DIRTY_TAG, PARENT_TAG, RUN_NAME_TAG, SOURCE_NAME_TAG, SOURCE_TYPE_TAG, USER_TAG,
)

MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_TAGS_PER_BATCH = 100

#: Libraries whose versions every run records as ``sweeper.version.<name>``.
VERSIONED = ("numpy", "optuna", "mlflow", "hydra-core")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts -> ``{"model.activation": "relu", "model.hidden": "[64, 32]", ...}``.

    Leaves (lists included) become ``str(value)``, the form MLflow stores params in.
    """
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


_found: dict[str, str] | None = None


def environment_tags() -> dict[str, str]:
    """Who ran what (MLflow's user and source tags: the UI's User and Source columns), the git
    commit of the project (when it is a git checkout) and the key library versions, as this
    process found them first: the code a process runs is what it imported when it
    started, whatever is committed or edited in the checkout later. (Two ``git`` processes and
    four package lookups, ~6 ms, once per process instead of once per run.)

    The source is the command this process runs: ``python -m sweeper``, ``python -m
    sweeper.rerun``, or a console script's name (``sweeper``)."""
    global _found
    in_checkout = CHECKOUT is not None and (CHECKOUT / ".git").exists()
    if _found is not None and (GIT_COMMIT_TAG in _found or not in_checkout):
        return dict(_found)  # else git failed (a timeout): tried again at the next run
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        source = "python -m " + spec.name.removesuffix(".__main__")
    else:
        source = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    tags = {SOURCE_NAME_TAG: source, SOURCE_TYPE_TAG: "LOCAL"}
    try:
        tags[USER_TAG] = getpass.getuser()
    except Exception:  # no user name in the environment nor the password database (a container)
        pass
    for name in VERSIONED:
        try:
            tags[f"sweeper.version.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if in_checkout:
        git = {"cwd": CHECKOUT, "capture_output": True, "text": True, "timeout": 5, "check": True}
        try:
            commit = subprocess.run(["git", "rev-parse", "HEAD"], **git).stdout.strip()
            if commit:
                tags[GIT_COMMIT_TAG] = commit
                dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **git).stdout
                tags[GIT_DIRTY_TAG] = str(bool(dirty.strip())).lower()
        except (OSError, subprocess.SubprocessError):
            pass
    _found = tags
    return dict(_found)


class MlflowRun:
    """A started MLflow run: batched params, buffered metrics, tags, artifacts, and its end.

    ``MlflowRun.start(client, experiment_id, ...)`` creates the run; ``end(status)`` flushes the
    buffer and terminates it (FINISHED, FAILED or KILLED).

    A call the store fails (``store.is_store_failure``) raises StoreError naming
    ``mlflow.tracking_uri``; from then on the run is ``broken`` and every call raises that error
    at once, so the way out of a run never waits on a dead server again.
    """

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self._buffer: list = []
        self.ended = False
        self.broken: Exception | None = None

    @contextmanager
    def _writing(self, doing: str) -> Iterator[None]:
        if self.broken is not None:
            raise self.broken
        try:
            yield
        except Exception as error:
            if not is_store_failure(error):
                raise
            self.broken = store_error("mlflow.tracking_uri", self.client.tracking_uri, doing, error)
            raise self.broken from None

    @classmethod
    def start(cls, client: Any, experiment_id: str, *, run_name: str | None = None, parent_run_id: str | None = None,
              tags: Mapping[str, str] | None = None) -> "MlflowRun":
        """Create the run in ``experiment_id``, a child of ``parent_run_id`` when given."""
        parent = {PARENT_TAG: parent_run_id} if parent_run_id else {}
        run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}) | parent)
        return cls(client, run.info.run_id)

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        with self._writing("logging params"):
            for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=items[start:start + MAX_PARAMS_PER_BATCH], synchronous=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Buffer ``metrics`` at ``step``; sent by ``flush`` (or ``end``). NaN/inf are kept."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        for key, value in metrics.items():
            self._buffer.append(Metric(key, float(value), timestamp, int(step)))
        if len(self._buffer) >= MAX_METRICS_PER_BATCH:
            self.flush()

    def flush(self, tags: Mapping[str, str] | None = None) -> None:
        """Send the buffered metrics, and ``tags``, in as few ``log_batch`` calls as MLflow takes
        (1000 values, of which 100 tags, a call): a trial's curves and its end tags are one."""
        from mlflow.entities import RunTag

        buffer, self._buffer = self._buffer, []
        pending = [RunTag(key, str(value)) for key, value in (tags or {}).items()]
        with self._writing("logging metrics and tags" if pending else "logging metrics"):
            while buffer or pending:
                tag_chunk, pending = pending[:MAX_TAGS_PER_BATCH], pending[MAX_TAGS_PER_BATCH:]
                room = MAX_METRICS_PER_BATCH - len(tag_chunk)
                chunk, buffer = buffer[:room], buffer[room:]
                self.client.log_batch(self.run_id, metrics=chunk, tags=tag_chunk, synchronous=True)

    def log_dataset(self, info: Mapping[str, Any], context: str = "training") -> None:
        """The CSV as the run's MLflow dataset input (the runs table's Datasets column): its file
        name, the first 16 hex digits of its SHA-256 as digest, its path as source, its columns
        as schema and its row count as profile. ``info`` is ``Dataset.info()``."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        columns = info["columns"]
        schema = [{"type": "double" if columns[name]["kind"] == "numeric" else "string", "name": name}
                  for name in info["features"]] + [{"type": "double", "name": info["target"]}]
        dataset = Dataset(
            name=Path(info["path"]).name, digest=str(info["sha256"])[:16], source_type="local",
            source=json.dumps({"uri": Path(info["path"]).as_uri()}),
            schema=json.dumps({"mlflow_colspec": schema}),
            profile=json.dumps({"num_rows": sum(info["rows"].values()),
                                "num_elements": sum(info["rows"].values()) * len(schema)}),
        )
        inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])]
        with self._writing("logging the dataset"):
            try:
                self.client.log_inputs(self.run_id, datasets=inputs)
            except Exception as error:
                # Runs that start at the same moment (the tasks of a SLURM job array) may insert
                # the same new dataset at once: the losers' inserts break its unique key, and the
                # row they then find is the one to link (MLflow's server does not retry itself).
                if not lost_a_race(error):
                    raise
                self.client.log_inputs(self.run_id, datasets=inputs)

    def log_artifacts(self, folder: str) -> None:
        """Upload every file of ``folder`` to the run's artifact root."""
        with self._writing("logging artifacts"):
            self.client.log_artifacts(self.run_id, folder)

    def end(self, status: str = "FINISHED", tags: Mapping[str, str] | None = None, name: str | None = None) -> None:
        """Send what is buffered with ``tags`` and the run's new ``name`` (the runs table's first
        column; MLflow renames a run given its ``mlflow.runName`` tag), then terminate the run
        with ``status``; idempotent. Two calls to the store where a trial made five."""
        if self.ended:
            return
        tags = dict(tags or {})
        if name is not None:
            tags[RUN_NAME_TAG] = name
        try:
            self.flush(tags)
        finally:
            with self._writing("ending the run"):
                self.client.set_terminated(self.run_id, status=status)
            self.ended = True
