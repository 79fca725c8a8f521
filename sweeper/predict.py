"""``python -m sweeper.predict MODEL INPUT.csv [--output OUT.csv]``: predictions for raw CSV rows.

MODEL is a run id (its model ``runs:/ID/model``), a ``runs:/ID/model`` URI, or a registered
``models:/NAME/VERSION`` / ``models:/NAME@ALIAS``. INPUT.csv holds rows as in the training CSV
(any dialect the training read accepts; missing cells are filled as in training, an unseen
category encodes as in training). The output is the input's rows with a ``prediction`` column
(a classifier's: the most probable class, then a ``probability_<class>`` column per class),
written to OUT.csv or, without ``--output``, to stdout. When INPUT.csv has the target column,
RMSE, MAE and R² (a classifier's accuracy, log loss, macro F1 and ROC AUC) over its rows with a
target are printed (on stderr when the rows go to stdout).

Exit status: 0 done; 2 the model or the file cannot be used (one line naming it).
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from sweeper.errors import ArgumentParser, SweeperError, one_line
from sweeper.tracking import existing_store
from sweeper.tracking.tags import PARENT_TAG, TRIAL_TAG

PREDICTION = "prediction"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


class PredictError(SweeperError):
    """The model or the input cannot be used."""


def model_uri(model: str) -> str:
    """``runs:/ID/model`` for a bare run id; a ``runs:/``, ``models:/`` or other URI as it is."""
    return f"runs:/{model}/model" if _RUN_ID.match(model) else model


def load(uri: str, tracking: str | None) -> Any:
    """The pyfunc model at ``uri`` from the store ``tracking`` (None: the default store, which
    must exist); PredictError naming it if absent. A sweep's trial (which logs no model) is told
    where its sweep's best model is."""
    import mlflow

    client, tracking = existing_store(tracking)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as err:
        error = one_line(err)
    if uri.startswith("runs:/"):
        try:
            tags = client.get_run(uri.split("/")[1]).data.tags
        except Exception:
            tags = {}
        if TRIAL_TAG in tags and PARENT_TAG in tags:
            raise PredictError(f"MODEL {uri}: run {uri.split('/')[1]} is trial {tags[TRIAL_TAG]} of a sweep, and "
                               f"trials log no model; the sweep's best is runs:/{tags[PARENT_TAG]}/model")
    raise PredictError(f"MODEL {uri}: cannot be loaded from {tracking}: {error}")


def predict_csv(model: Any, path: str) -> tuple[Any, dict[str, float] | None]:
    """(rows with a ``prediction`` column (and a classifier's probabilities), {rmse, mae, r2} or
    {accuracy, log_loss, f1_macro, roc_auc} on the rows with a target, or None)."""
    import numpy as np
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from sweeper.data import read_csv
    from sweeper.data.columns import LARGEST, bad_cells_message
    from sweeper.data.target import label_cells_of_target
    from sweeper.train import classification_metrics, regression_metrics

    network = model.unwrap_python_model()
    target = network.preprocessor.target
    rows = read_csv(path, na_values=network.preprocessor.na_values, key="INPUT.csv")
    features = list(network.preprocessor.features)
    absent = [name for name in features if name not in rows.columns]
    if absent:
        raise PredictError(
            f"INPUT.csv {path}: the model's column(s) {', '.join(map(repr, absent))} are not in the "
            f"file; it has: {', '.join(map(repr, map(str, rows.columns)))}"
        )
    try:
        # Only the model's columns: MLflow warns of others to models whose signature lists them (older ones).
        predictions = model.predict(rows[features])
    except MlflowException as error:  # the model's one line on a cell it cannot use
        raise PredictError(f"INPUT.csv {path}: {error.message}") from None
    out = rows.copy()
    if isinstance(predictions, pd.DataFrame):  # a classifier: the label and each class's probability
        for column in predictions.columns:
            out[column] = predictions[column].to_numpy()
    else:
        out[PREDICTION] = predictions
    if target not in rows.columns:
        return out, None
    if network.preprocessor.classifies:  # scored on the rows whose label is one of the model's classes
        labels = label_cells_of_target(rows[target].reset_index(drop=True))
        codes = pd.Index(network.preprocessor.labels.classes).get_indexer(labels)
        known = codes >= 0
        if not known.any():
            return out, None
        proba = predictions[[c for c in predictions.columns if c != PREDICTION]].to_numpy(dtype=np.float64)
        return out, classification_metrics(codes[known], proba[known])
    # Scored on the rows whose target is a number (a missing or text cell is left out); a number the
    # metrics cannot square (infinite, beyond ±LARGEST) is refused, naming the column and its first row.
    y = pd.to_numeric(rows[target], errors="coerce").to_numpy(dtype=np.float64)
    huge = np.abs(y) > LARGEST
    if huge.any():
        raise PredictError(f"INPUT.csv {path}: {bad_cells_message(rows[target], huge, target, is_target=True)}")
    known = ~np.isnan(y)
    if not known.any():
        return out, None
    return out, regression_metrics(y[known, None], np.asarray(predictions)[known, None])


def main(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    """The command: exit status 0, or 2 with one line naming what cannot be used (130 on Ctrl-C)."""
    parser = ArgumentParser(
        prog="python -m sweeper.predict",
        description="Predict the target for the raw rows of a CSV with a logged or registered model.",
    )
    parser.add_argument("model", metavar="MODEL", help="run id, runs:/ID/model, models:/NAME/VERSION or models:/NAME@ALIAS")
    parser.add_argument("input", metavar="INPUT.csv", help="rows with the training CSV's columns (the target is optional)")
    parser.add_argument("--output", "-o", metavar="OUT.csv", default=None,
                        help="where to write the rows with their prediction (default: stdout)")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)")
    args = parser.parse_args(argv)
    if args.output is not None and not args.output.strip():
        parser.error("argument --output/-o: the path is empty; name a file, or leave -o out to write to stdout")
    stdout = stdout or sys.stdout
    try:
        model = load(model_uri(args.model), args.tracking_uri)
        rows, metrics = predict_csv(model, args.input)
        if args.output:
            try:
                rows.to_csv(args.output, index=False)
            except OSError as err:
                raise PredictError(f"--output {args.output}: cannot be written: {err.strerror or one_line(err)}") from None
        else:
            rows.to_csv(stdout, index=False)
    except SweeperError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("predict: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `| head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    report = sys.stderr if not args.output else stdout
    if args.output:
        print(f"{len(rows)} predictions written to {args.output}", file=report)
    if metrics is not None:
        print("  ".join(f"{name}={value:.6g}" for name, value in metrics.items()), file=report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
