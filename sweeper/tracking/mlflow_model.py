"""A run's network as an MLflow Model (``runs:/ID/model``), and its registration.

The model is MLflow's *models from code*: ``pyfunc_model.py`` plus the run's ``model.npz`` as
its one artifact (nothing is pickled), and the modules of ``sweeper`` it runs (``SERVING_CODE``)
as ``code_paths``, so it loads where ``sweeper`` is not installed. Its signature has no input
schema: MLflow's column types cannot say "a number, maybe as int, with holes or as text", so the
model checks cells itself (docs/reliability.md, "The model takes rows with holes"); what it
predicts is its ``signature``'s output.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Sequence

from sweeper.errors import SweeperError, one_line
from sweeper.tracking import quiet_logger
from sweeper.tracking.tags import MODEL_OF_TAG

log = logging.getLogger(__name__)

#: What the model imports at load time, relative to the ``sweeper`` package.
SERVING_CODE = (
    "__init__.py", "errors.py", "data", "nn",
    "tracking/__init__.py", "tracking/store.py", "tracking/tags.py", "tracking/model_file.py",
)


def example_rows(info: dict, n: int = 5) -> Any:
    """The first ``n`` raw rows of the run's CSV, feature columns only, read as training read
    them (``info`` is the run's ``data.json``), the model's input example; None when the file is
    no longer readable."""
    from sweeper.data import read_csv

    dialect = info.get("dialect", {})
    try:
        frame = read_csv(info["path"], sep=dialect.get("sep"), encoding=dialect.get("encoding"),
                         na_values=dialect.get("na_values", ()))
    except (SweeperError, KeyError, OSError):
        return None
    return frame[list(info["features"])].head(n)


def signature(classes: Sequence[str] | None = None) -> Any:
    """No input schema (MLflow hands the model rows as they come); output: float64 (n,), or for a
    classifier of ``classes`` the ``prediction`` column and a ``probability_<class>`` per class."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema, TensorSpec

    if classes:
        outputs = Schema([ColSpec(AnyType(), "prediction")]
                         + [ColSpec("double", f"probability_{name}") for name in classes])
        return ModelSignature(outputs=outputs)
    return ModelSignature(outputs=Schema([TensorSpec(np.dtype("float64"), (-1,))]))


def _serving_code(folder: Path) -> Path:
    """A copy of the modules in ``SERVING_CODE`` as a ``sweeper`` package under ``folder``."""
    source = Path(__file__).resolve().parents[1]
    target = folder / "sweeper"
    for part in SERVING_CODE:
        destination = target / part
        destination.parent.mkdir(parents=True, exist_ok=True)
        if (source / part).is_dir():
            shutil.copytree(source / part, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source / part, destination)
    return target


def log_model(tracking_uri: str, experiment_id: str, run_id: str, model_npz: str | Path, info: dict) -> str:
    """Log ``model_npz`` (a run's ``model.npz``) as the MLflow Model ``model`` of run ``run_id``,
    with its CSV's first rows as input example and a classifier's classes (``info`` is the run's
    ``data.json``); returns its URI (``models:/m-…``; ``runs:/<run_id>/model`` resolves to it).

    Uses MLflow's logged-model API, which reads the process-wide tracking URI and experiment:
    both are set here to the run's.
    """
    import mlflow
    from mlflow.models import Model

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    with tempfile.TemporaryDirectory(prefix="sweeper-model-") as folder, quiet_logger("mlflow"):  # MLflow's INFO lines on the input example
        info = Model.log(
            artifact_path=None,
            name="model",
            flavor=mlflow.pyfunc,
            run_id=run_id,
            python_model=str(Path(__file__).with_name("pyfunc_model.py")),
            artifacts={"model": str(model_npz)},
            code_paths=[str(_serving_code(Path(folder)))],
            signature=signature(info.get("classes")),
            input_example=example_rows(info),
            # What the model imports besides MLflow (which MLflow adds), pinned as installed.
            pip_requirements=[f"{name}=={metadata.version(name)}" for name in ("numpy", "pandas")],
        )
    return info.model_uri


def log_best_model(client: Any, run_id: str, members: list[tuple[str, int]], tracking_uri: str,
                   register_as: str | None, evaluate: Callable[[Path, Path], dict[str, float]] | None = None,
                   shown: str | None = None) -> list[str]:
    """Log the sweep's model as its parent run ``run_id``'s MLflow Model ``model`` and register
    it as ``register_as`` (a new version each time a sweep ends) when set; the summary's lines
    that say where it is. ``members``: ``(MLflow run id, trial number)`` of the best trial, or of
    the top N trials best first (``hydra.sweeper.ensemble``): their logged ``model.npz`` files
    make one ensemble (`sweeper.tracking.model_file.save_ensemble`), whose metrics
    ``evaluate(model_npz, best_config_yaml)`` gives are logged to the parent as ``ensemble_<name>``
    (the metric ``shown``, e.g. ``test_rmse``, in its line).

    Nothing is logged when those trials' model is already the parent's (a resumed sweep whose
    best did not change, another worker that got there first); one that cannot be logged is a
    warning line saying why."""
    import mlflow

    from sweeper.tracking.model_file import save_ensemble
    from sweeper.tracking.parent_run import log_counts

    uri, found = None, {}
    parent = client.get_run(run_id)
    model_of = ",".join(member for member, _ in members)
    if parent.data.tags.get(MODEL_OF_TAG) != model_of:
        try:
            with tempfile.TemporaryDirectory(prefix="sweeper-best-") as folder:
                files = []
                for j, (member, _) in enumerate(members):
                    Path(folder, str(j)).mkdir()
                    files.append(Path(client.download_artifacts(member, "model.npz", str(Path(folder, str(j))))))
                best = members[0][0]
                info = json.loads(Path(client.download_artifacts(best, "data.json", folder)).read_text())
                npz = files[0]
                if len(files) > 1:
                    npz = Path(folder, "model.npz")
                    save_ensemble(npz, files)
                    if evaluate is not None:
                        found = evaluate(npz, Path(client.download_artifacts(best, "config.yaml", folder)))
                        log_counts(client, run_id, {f"ensemble_{name}": value for name, value in found.items()}
                                   | {"ensemble_size": len(files)})
                uri = log_model(tracking_uri, parent.info.experiment_id, run_id, npz, info)
        except Exception as err:
            log.warning("the sweep's model was not logged to the parent run: %s", str(err).splitlines()[0])
        else:
            client.set_tag(run_id, MODEL_OF_TAG, model_of)
    numbers = ", ".join(f"#{number}" for _, number in members)
    what = f"trial {numbers}" if len(members) == 1 else f"the mean of the top {len(members)} trials: {numbers}"
    if shown in found:
        what += f"; its {shown}={found[shown]:.6g}"
    lines = [f"{'best ' if len(members) == 1 else ''}model: runs:/{run_id}/model ({what})"]
    if register_as:
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints two lines of its own
                version = mlflow.register_model(uri or f"runs:/{run_id}/model", str(register_as))
            lines.append(f"registered as models:/{register_as}/{version.version}")
        except Exception as err:
            log.warning("hydra.sweeper.register_model=%s: not registered: %s", register_as, one_line(err))
    return lines
