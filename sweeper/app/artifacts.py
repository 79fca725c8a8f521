"""What a run leaves in MLflow besides its metrics: config.yaml, data.json, loss_curves.png,
model.npz (and a classifier's confusion matrix), and a single run's MLflow Model."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from sweeper.errors import one_line


def log_run_model(cfg: DictConfig, mlrun: Any, model_npz: Path, info: dict) -> str:
    """Log ``model_npz`` as the run's MLflow Model ``model`` (``sweeper.tracking.mlflow_model``)."""
    from sweeper.tracking.mlflow_model import log_model

    experiment_id = mlrun.client.get_run(mlrun.run_id).info.experiment_id
    return log_model(mlrun.client.tracking_uri, experiment_id, mlrun.run_id, model_npz, info)

def write_artifacts(folder: Path, cfg: DictConfig, dataset: Any, net: Any, result: Any, with_model: bool,
                     mlrun: Any, drawing: Any = None) -> None:
    """config.yaml, data.json, loss_curves.png and (unless the run failed) model.npz, and for a
    classifier that did not fail confusion_matrix.csv and .png (test rows).

    A trial's ``loss_curves.png`` goes to ``drawing`` when the launcher gave one (see ``sweeper.app.job.run``),
    which logs it to the run itself. A plot that cannot be drawn costs the run its picture,
    never its other artifacts.
    """
    import pandas as pd

    from sweeper.tracking import plots
    from sweeper.tracking.model_file import save_model

    write_record(folder, cfg, dataset)
    loss = net.loss_function.name
    if drawing is not None:
        drawing.loss_curves(result.history, result.best_epoch, loss, mlrun.client.tracking_uri, mlrun.run_id)
    else:
        try:
            plots.plot_loss_curves(result.history, result.best_epoch, folder / "loss_curves.png", loss)
        except Exception as error:
            print(f"warning: loss_curves.png not drawn: {one_line(error)}", file=sys.stderr)
    if with_model:
        save_model(folder / "model.npz", net, dataset.preprocessor, cfg.model)
    if with_model and dataset.task == "classification":  # true class per row, predicted per column
        names = dataset.classes
        matrix = plots.confusion_matrix(dataset.codes("test"), predicted_codes(net.forward(dataset.X_test)), len(names))
        frame = pd.DataFrame(matrix, index=pd.Index(names, name="true \\ predicted"), columns=names)
        frame.to_csv(folder / "confusion_matrix.csv")
        try:
            accuracy = matrix.trace() / max(matrix.sum(), 1)
            plots.plot_confusion_matrix(matrix, names, folder / "confusion_matrix.png",
                                        f"Test rows: {matrix.sum()}, accuracy {accuracy:.3f}")
        except Exception as error:
            print(f"warning: confusion_matrix.png not drawn: {one_line(error)}", file=sys.stderr)

def predicted_codes(outputs: Any) -> Any:
    """The most probable class (n,) of a classifier's outputs (p > ½ for one sigmoid output)."""
    import numpy as np

    from sweeper.nn import class_probabilities

    return np.argmax(class_probabilities(outputs), axis=1)

def write_record(folder: Path, cfg: DictConfig, dataset: Any) -> None:
    """config.yaml and data.json: what a rerun needs, logged whatever the run's end."""
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    (folder / "data.json").write_text(json.dumps(dataset.info(), indent=2) + "\n")
