"""The default sweep written by hand with Optuna and MLflow: what a user would write instead of
``python -m sweeper -m``.

The same data (``sweeper.data.load_dataset`` on car_prices, the same split and scaling), the
same NumPy network and training loop (``sweeper.nn``, ``sweeper.train.fit``), the same search
space as ``conf/search/default.yaml`` with the schedule fixed to constant (the first trial is the
base config, as ours with ``start_from_defaults``), TPE (seed 0) and a median pruner that waits 5
epochs, fed by ``trial.report`` + ``trial.should_prune`` after every epoch.

Storage: a journal file by default, the kind our sweep uses by default (``mlruns/optuna.log``),
so both pay the same kind of storage round trips; ``--storage sqlite:///FILE`` takes Optuna's
SQLite instead.

MLflow: a parent run for the study and a nested run per trial with its params, its per-epoch
``train_loss``/``val_loss``/``test_loss``/``lr`` (kept during training and sent in one
``log_batch`` at its end, as MLflow advises for many values), its final metrics
(``{train,val,test}_{rmse,mae,r2}``, ``best_epoch``, ``epochs_run``, ``generalization_gap``,
``train_seconds``) and ``loss_curves.png``; the parent run gets the best params and value.

    python benchmarks/peers/plain_optuna_mlflow.py --trials 30 --epochs 200 \\
        --tracking-uri sqlite:///mlruns/mlflow.db --storage mlruns/optuna.log
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from sweeper import DATA_DIR  # noqa: E402
from sweeper.data import load_dataset  # noqa: E402
from sweeper.nn import SGD, Network, make_schedule  # noqa: E402
from sweeper.train import FAILED, STOPPED, EarlyStopping, fit, regression_metrics, rmse  # noqa: E402

HIDDEN = {"32": [32], "64": [64], "32,16": [32, 16], "64,32": [64, 32]}
# The base config (conf/config.yaml): the first trial, as our sweep's start_from_defaults.
DEFAULTS = {"activation": "relu", "hidden": "64,32", "l1": 0.0, "l2": 1e-4, "dropout": 0.0,
            "lr": 0.01, "momentum": 0.9, "nesterov": False, "batch_size": 32}
FIXED = {"data": "car_prices.csv", "target": "Price", "epochs": 200, "patience": 20, "init": "he",
         "schedule": "constant", "seed": 0, "divergence_factor": 1e4}


class TrainingFailed(Exception):
    """The training loss blew up or the network's output collapsed to a constant: the trial is FAIL."""


def suggest(trial: optuna.Trial) -> dict:
    """conf/search/default.yaml, the schedule fixed to constant."""
    return {
        "activation": trial.suggest_categorical("activation", ["relu", "tanh", "elu", "leaky_relu"]),
        "hidden": trial.suggest_categorical("hidden", list(HIDDEN)),
        "l1": trial.suggest_categorical("l1", [0.0, 1e-5, 1e-4, 1e-3]),
        "l2": trial.suggest_categorical("l2", [0.0, 1e-5, 1e-4, 1e-3]),
        "dropout": trial.suggest_categorical("dropout", [0.0, 0.1, 0.2]),
        "lr": trial.suggest_float("lr", 1e-3, 0.1, log=True),
        "momentum": trial.suggest_float("momentum", 0.0, 0.9),
        "nesterov": trial.suggest_categorical("nesterov", [True, False]),
        "batch_size": trial.suggest_categorical("batch_size", [16, 32, 64, 128]),
    }


class PruningReporter:
    """fit callback: report the epoch's validation RMSE (in dollars) and stop if pruned."""

    def __init__(self, trial: optuna.Trial, data) -> None:
        self.trial, self.data = trial, data
        self.y_val = data.preprocessor.inverse_target(data.y_val)

    def __call__(self, log) -> bool:
        value = rmse(self.y_val, self.data.preprocessor.inverse_target(log.predictions["val"]))
        if not math.isfinite(value):
            return False
        self.trial.report(value, log.epoch)
        return self.trial.should_prune()


def train(params: dict, data, trial: optuna.Trial):
    """The network of ``params`` trained on ``data``; seeds derived as ``python -m sweeper`` does."""
    net_seed, shuffle_seed = np.random.SeedSequence(FIXED["seed"]).spawn(2)
    net = Network([data.n_inputs, *HIDDEN[params["hidden"]], 1], activation=params["activation"],
                  init=FIXED["init"], seed=np.random.default_rng(net_seed), l1=params["l1"], l2=params["l2"],
                  dropout=params["dropout"])
    started = time.perf_counter()
    result = fit(
        net, data.X_train, data.y_train, epochs=FIXED["epochs"], batch_size=params["batch_size"],
        optimizer=SGD(net.params(), momentum=params["momentum"], nesterov=params["nesterov"]),
        schedule=make_schedule(FIXED["schedule"], params["lr"]),
        eval_sets={"val": (data.X_val, data.y_val), "test": (data.X_test, data.y_test)},
        early_stopping=EarlyStopping(patience=FIXED["patience"]),
        seed=np.random.default_rng(shuffle_seed), callbacks=[PruningReporter(trial, data)],
        divergence_factor=FIXED["divergence_factor"],
    )
    return net, result, time.perf_counter() - started


def final_metrics(net, data, result, seconds: float) -> dict:
    metrics = {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "train_seconds": seconds}
    if result.status in FAILED:
        return metrics
    inverse = data.preprocessor.inverse_target
    for split in ("train", "val", "test"):
        predicted = inverse(net.forward(getattr(data, f"X_{split}")))
        found = regression_metrics(inverse(getattr(data, f"y_{split}")), predicted)
        metrics.update({f"{split}_{name}": value for name, value in found.items()})
    i = result.best_epoch - 1
    metrics["generalization_gap"] = result.history["val_loss"][i] - result.history["train_loss"][i]
    return metrics


def plot_loss_curves(result, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4))
    epochs = range(1, result.epochs_run + 1)
    for name in ("train_loss", "val_loss", "test_loss"):
        axes.plot(epochs, result.history[name], label=name)
    if result.best_epoch:
        axes.axvline(result.best_epoch, color="grey", linestyle="--", label=f"best epoch {result.best_epoch}")
    axes.set_xlabel("epoch")
    axes.set_ylabel("squared error / 2")
    axes.legend()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def log_trial(run_id: str, params: dict, result, metrics: dict) -> None:
    """Params, per-epoch curves (one log_batch), final metrics and loss_curves.png."""
    mlflow.log_params(params | FIXED)
    now = int(time.time() * 1000)
    curves = [Metric(name, float(value), now, epoch)
              for name, values in result.history.items() for epoch, value in enumerate(values, start=1)]
    mlflow.MlflowClient().log_batch(run_id, metrics=curves)
    mlflow.log_metrics(metrics)
    with tempfile.TemporaryDirectory() as folder:
        plot_loss_curves(result, Path(folder) / "loss_curves.png")
        mlflow.log_artifact(str(Path(folder) / "loss_curves.png"))


def objective(trial: optuna.Trial, data) -> float:
    params = suggest(trial)
    with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True,
                          tags={"trial": str(trial.number)}) as run:
        net, result, seconds = train(params, data, trial)
        log_trial(run.info.run_id, params, result, final_metrics(net, data, result, seconds))
        if result.status in FAILED:
            mlflow.set_tag("state", "FAIL")
            mlflow.end_run("FAILED")
            raise TrainingFailed(result.reason)
        if result.status == STOPPED:
            mlflow.set_tag("state", "PRUNED")
            raise optuna.TrialPruned(result.reason)
        mlflow.set_tag("state", "COMPLETE")
        return rmse(data.preprocessor.inverse_target(data.y_val),
                    data.preprocessor.inverse_target(net.forward(data.X_val)))


def open_storage(storage: str):
    if "://" in storage:
        return storage  # an SQLAlchemy URL: Optuna's RDB storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(storage))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=FIXED["epochs"])
    parser.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    parser.add_argument("--storage", default="mlruns/optuna.log", help="a journal file or an SQLAlchemy URL")
    parser.add_argument("--study-name", default="car_prices")
    args = parser.parse_args(argv)
    FIXED["epochs"] = args.epochs

    threadpool_limits(limits=1, user_api="blas")  # small matrices: one BLAS thread, as ours
    data = load_dataset(DATA_DIR / FIXED["data"], FIXED["target"], seed=FIXED["seed"])
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("car_prices")
    study = optuna.create_study(
        study_name=args.study_name, storage=open_storage(args.storage), direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_warmup_steps=5), load_if_exists=True,
    )
    study.enqueue_trial(DEFAULTS, skip_if_exists=True)
    with mlflow.start_run(run_name=f"sweep-{args.study_name}"):
        study.optimize(lambda trial: objective(trial, data), n_trials=args.trials, catch=(TrainingFailed,))
        if any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
            mlflow.log_params({f"best.{k}": v for k, v in study.best_params.items()})
            mlflow.log_metric("best_val_rmse", study.best_value)
    print(f"best val_rmse {study.best_value:.6g} with {study.best_params}")


if __name__ == "__main__":
    main()
