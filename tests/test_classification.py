"""Classification from the CSV to MLflow: the task, the classes, the stratified split, the
metrics against scikit-learn's, the confusion matrix, the model's labels and probabilities, and
an exact rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweeper import PROJECT_ROOT
from sweeper.data import load_dataset, split_indices
from sweeper.errors import DataError
from tests.curves import epoch_values
from .stores import load_study

DATA = PROJECT_ROOT / "data"


# ----------------------------------------------------------------------------------- data


@pytest.mark.parametrize("sizes", [(178, 182, 177, 183, 181, 182, 181, 179, 174, 180), (3, 1, 50), (10, 990), (7, 7, 7)])
@pytest.mark.parametrize("test_size, val_size", [(0.2, 0.1), (0.25, 0.25), (0.1, 0.05)])
def test_a_stratified_split_keeps_every_class_within_one_row_of_its_share(sizes, test_size, val_size):
    codes = np.random.default_rng(0).permutation(np.repeat(np.arange(len(sizes)), sizes))
    n = len(codes)
    split = split_indices(n, test_size, val_size, seed=3, stratify=codes)
    plain = split_indices(n, test_size, val_size, seed=3)
    assert {k: len(v) for k, v in split.items()} == {k: len(v) for k, v in plain.items()}  # same totals
    assert np.array_equal(np.sort(np.concatenate(list(split.values()))), np.arange(n))
    for name, fraction in (("test", test_size), ("val", val_size)):
        counts = np.bincount(codes[split[name]], minlength=len(sizes))
        assert np.all(np.abs(counts - fraction * np.asarray(sizes)) < 1 + 1e-9), (name, counts)
    assert np.all(np.bincount(codes[split["train"]], minlength=len(sizes)) >= 1)  # every class is learnt


def test_the_task_follows_the_target_unless_set(tmp_path):
    rows = 60
    frame = pd.DataFrame({
        "x": np.arange(rows, dtype=float),
        "label": np.where(np.arange(rows) % 3 == 0, "yes", "no"),
        "flag": np.arange(rows) % 2 == 0,
        "rating": np.arange(rows) % 4,
    })
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    drop = {"label": ["flag", "rating"], "flag": ["label", "rating"], "rating": ["label", "flag"]}
    assert load_dataset(path, "label", drop=drop["label"]).task == "classification"  # text
    assert load_dataset(path, "flag", drop=drop["flag"]).task == "classification"  # true/false
    with_holes = frame.astype({"flag": object})
    with_holes.loc[[3, 7], "flag"] = None  # pandas reads True/False with empty cells as objects
    with_holes.to_csv(tmp_path / "holes.csv", index=False)
    holed = load_dataset(tmp_path / "holes.csv", "flag", drop=drop["flag"])
    assert holed.task == "classification" and holed.classes == ["False", "True"] and sum(holed.rows.values()) == rows - 2
    regressed = load_dataset(path, "rating", drop=drop["rating"])
    assert regressed.task == "regression"  # a number, and the data line says how to classify it
    assert "rating holds 4 whole numbers and is regressed (data.task=classification" in regressed.summary()[0]
    rated = load_dataset(path, "rating", drop=drop["rating"], task="classification")  # ...unless said
    assert rated.classes == ["0", "1", "2", "3"] and rated.y_train.shape[1] == 4
    assert load_dataset(path, "label", drop=drop["label"]).classes == ["no", "yes"]
    # Classes are one-hot rows, never scaled; the split is stratified by default.
    d = load_dataset(path, "label", drop=drop["label"], target_scaling="minmax")
    assert set(np.unique(d.y_train)) == {0.0, 1.0} and np.all(d.y_train.sum(axis=1) == 1)
    assert d.stratified and d.info()["classes"] == ["no", "yes"] and d.info()["task"] == "classification"


def test_a_class_missing_from_the_training_rows_is_one_line_naming_it(tmp_path):
    frame = pd.DataFrame({"x": np.arange(40.0), "y": ["a", "b"] * 19 + ["a", "c"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    # Unshuffled, the last rows are the test rows: 'c' is only there.
    with pytest.raises(DataError) as error:
        load_dataset(tmp_path / "t.csv", "y", shuffle=False, stratify=False)
    message = str(error.value)
    assert "\n" not in message and "'c' (1 row)" in message and "test rows" in message and "split.stratify" in message
    # Stratified, 'c' (one row) is kept for training.
    assert load_dataset(tmp_path / "t.csv", "y", shuffle=False).classes == ["a", "b", "c"]


def test_classes_and_the_loss_are_stored_in_the_model_file_without_pickle(tmp_path):
    from sweeper.data import Preprocessor

    d = load_dataset(DATA / "penguins.csv", "species")
    arrays = d.preprocessor.to_arrays()
    np.savez(tmp_path / "m.npz", **arrays)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        loaded = Preprocessor.from_arrays({k: npz[k] for k in npz.files})
    assert loaded.task == "classification" and loaded.labels.names() == ["Adelie", "Chinstrap", "Gentoo"]
    raw = pd.read_csv(DATA / "penguins.csv")
    assert np.array_equal(loaded.class_codes(raw["species"]), d.preprocessor.class_codes(raw["species"]))
    # A file written before classification (no data.task) is a regression model.
    old = {k: v for k, v in load_dataset(DATA / "penguins.csv", "body_mass_g").preprocessor.to_arrays().items()
           if k != "data.task"}
    assert Preprocessor.from_arrays(old).task == "regression"


# ------------------------------------------------------------------------ end to end (CLI)


def _metrics_like_sklearn(y, proba):
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    predicted = np.argmax(proba, axis=1)
    auc = (roc_auc_score(y, proba[:, 1]) if proba.shape[1] == 2
           else roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    return {"accuracy": accuracy_score(y, predicted), "log_loss": log_loss(y, proba, labels=range(proba.shape[1])),
            "f1_macro": f1_score(y, predicted, average="macro"), "roc_auc": auc}


def _sklearn_test_accuracy(d, seeds: range) -> float:
    """Mean test accuracy of scikit-learn's MLPClassifier on the split ``d``, configured as the
    default network: 64-32 relu, SGD lr 0.01 with momentum 0.9, batches of 32, L2 1e-4, 200
    epochs; one fit per seed of ``seeds``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    scores = []
    for seed in seeds:
        reference = MLPClassifier((64, 32), solver="sgd", learning_rate_init=0.01, momentum=0.9,
                                  nesterovs_momentum=False, batch_size=32, alpha=1e-4, max_iter=200,
                                  tol=0.0, n_iter_no_change=200, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reference.fit(d.X_train, d.y_train.argmax(axis=1))
        scores.append(reference.score(d.X_test, d.y_test.argmax(axis=1)))
    return float(np.mean(scores))


@pytest.mark.slow
def test_digits_is_as_accurate_as_sklearn_and_logs_what_a_classifier_should(run_cli, mlflow_client, mlflow_uri,
                                                                            tmp_path):
    proc = run_cli("data=digits", "split.folds=1")  # the split MLPClassifier is fitted on
    assert proc.returncode == 0, proc.stderr
    assert "10 classes of digit (stratified split)" in proc.stdout
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("digits").experiment_id])
    m, params = run.data.metrics, run.data.params
    # As accurate on the same test rows as scikit-learn's MLP of the same shape and optimiser
    # (its mean over three seeds: 0.958-0.975 each), within two standard errors of a test
    # accuracy over those rows (~0.02): a seed's luck is not the bound.
    d = load_dataset(DATA / "digits.csv", "digit", task="classification", seed=0)
    reference = _sklearn_test_accuracy(d, range(3))
    standard_error = np.sqrt(reference * (1 - reference) / len(d.y_test))
    assert m["test_accuracy"] >= reference - 2 * standard_error, (m["test_accuracy"], reference)
    assert params["data.task"] == "classification" and params["objective"] == "val_log_loss"
    assert params["model.output_activation"] == "softmax" and params["split.stratify"] == "True"
    assert not any(k.endswith(("_rmse", "_mae", "_r2")) for k in m)
    run_id = run.info.run_id
    accuracy_curve = epoch_values(mlflow_client, run_id, "val_accuracy")
    assert sorted(accuracy_curve) == list(range(1, int(m["epochs_run"]) + 1))
    # Every curve has one point per epoch; the restored best network's accuracy and loss are
    # metrics of their own, as val_log_loss is.
    for curve in ("val_accuracy", "val_loss", "train_loss", "test_loss"):
        assert len(mlflow_client.get_metric_history(run_id, curve)) == int(m["epochs_run"]), curve
    assert m["model_val_accuracy"] == accuracy_curve[int(m["best_epoch"])]
    assert m["model_val_loss"] == pytest.approx(epoch_values(mlflow_client, run_id, "val_loss")[int(m["best_epoch"])], rel=1e-12)
    assert m["model_val_loss"] == pytest.approx(m["val_log_loss"], rel=1e-9)  # the cross-entropy is the log loss

    # The logged model predicts the test rows: the same metrics as scikit-learn computes on its
    # probabilities, and the confusion matrix counts those rows.
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    (tmp_path / "artifacts").mkdir()
    folder = Path(mlflow_client.download_artifacts(run_id, "", str(tmp_path / "artifacts")))
    info = json.loads((folder / "data.json").read_text())
    assert info["classes"] == d.classes == [str(k) for k in range(10)]
    rows = pd.read_csv(DATA / "digits.csv").iloc[d.indices["test"]]
    out = model.predict(rows.drop(columns="digit"))
    proba = out[[f"probability_{k}" for k in range(10)]].to_numpy()
    expected = _metrics_like_sklearn(rows["digit"].to_numpy(), proba)
    for name, value in expected.items():
        assert m[f"test_{name}"] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert np.array_equal(out["prediction"].to_numpy(), np.argmax(proba, axis=1))  # labels are the digits
    matrix = pd.read_csv(folder / "confusion_matrix.csv", index_col=0)
    assert matrix.to_numpy().sum() == len(rows) and list(matrix.columns) == d.classes
    assert np.trace(matrix.to_numpy()) / len(rows) == pytest.approx(m["test_accuracy"])
    assert (folder / "confusion_matrix.png").stat().st_size > 0


@pytest.mark.slow
def test_binary_string_labels_log_sklearns_roc_auc_and_predict_labels(run_cli, run_module, mlflow_client, mlflow_uri,
                                                                      workdir):
    frame = pd.read_csv(DATA / "penguins.csv")
    frame[frame["species"] != "Gentoo"].to_csv(workdir / "two.csv", index=False)  # Adelie vs Chinstrap
    proc = run_cli("data=csv", "data.path=two.csv", "data.target=species", "train.epochs=40")
    assert proc.returncode == 0, proc.stderr
    [run] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("two").experiment_id])
    assert run.data.params["model.output_activation"] == "sigmoid"  # one output for 2 classes

    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    d = load_dataset(workdir / "two.csv", "species", seed=0)
    rows = pd.read_csv(workdir / "two.csv").iloc[d.indices["test"]]
    out = model.predict(rows.drop(columns="species"))
    assert set(out["prediction"]) <= {"Adelie", "Chinstrap"}
    proba = out[["probability_Adelie", "probability_Chinstrap"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    y = (rows["species"] == "Chinstrap").to_numpy().astype(int)
    from sklearn.metrics import roc_auc_score

    assert run.data.metrics["test_roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]), rel=1e-12)

    # sweeper.predict writes the labels and probabilities and scores rows that have the target.
    predicted = run_module("sweeper.predict", run.info.run_id, "two.csv", "--output", "out.csv")
    assert predicted.returncode == 0, predicted.stderr
    written = pd.read_csv(workdir / "out.csv")
    assert list(written.columns[-3:]) == ["prediction", "probability_Adelie", "probability_Chinstrap"]
    accuracy = float(predicted.stdout.split("accuracy=")[1].split()[0])
    assert accuracy == pytest.approx((written["prediction"] == written["species"]).mean(), abs=1e-6)


@pytest.mark.slow
def test_a_classification_run_reruns_bit_for_bit(run_cli, run_module, mlflow_client):
    proc = run_cli("data=penguins_species", "train.epochs=15", "regularization.dropout=0.1")
    assert proc.returncode == 0, proc.stderr
    [original] = mlflow_client.search_runs([mlflow_client.get_experiment_by_name("penguins_species").experiment_id])
    check = run_module("sweeper.rerun", original.info.run_id, "--check")
    assert check.returncode == 0, check.stderr + check.stdout
    [again] = [r for r in mlflow_client.search_runs([original.info.experiment_id])
               if r.info.run_id != original.info.run_id]
    for name, value in original.data.metrics.items():
        if name != "train_seconds":
            assert again.data.metrics[name] == value, name


@pytest.mark.slow
def test_a_sweep_maximises_accuracy_and_minimises_log_loss(run_cli, mlflow_client, optuna_url):
    for objective, direction in (("val_accuracy", "MAXIMIZE"), ("auto", "MINIMIZE")):
        proc = run_cli("-m", "data=penguins_species", f"objective={objective}", "train.epochs=5",
                       "hydra.sweeper.n_trials=2", f"hydra.sweeper.study_name=s-{objective}",
                       f"hydra.sweeper.storage={optuna_url}")
        assert proc.returncode == 0, proc.stderr
        study = load_study(f"s-{objective}", optuna_url)
        assert study.direction.name == direction
        assert study.metric_names == ["val_accuracy" if objective == "val_accuracy" else "val_log_loss"]
