"""One training run: config -> data -> network -> trainer -> MLflow (``run``)."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from sweeper.app import artifacts
from sweeper.config import for_task, load_data, validate
from sweeper.errors import ConfigError, one_line
from sweeper.tracking.store import (
    experiment_name, get_or_create_experiment, is_store_failure, reach_database, store_error, tracking_uri,
    without_password,
)
from sweeper.tracking.tags import FAIL_REASON_TAG, LOGGED_AS, NOTE_TAG, STATE_TAG, TRAIN_STATUS_TAG, TRIAL_TAG

SPLITS = ("train", "val", "test")

# Run states, the same words in the returned dict, the ``sweeper.state`` tag and Optuna.
COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"


#: What a run returns and logs as final metrics, besides ``{train,val,test}_{rmse,mae,r2}``.
CURVE_METRICS = ("val_loss", "best_epoch", "epochs_run", "generalization_gap", "train_seconds")

def run(cfg: DictConfig, *, run_name: str | None = None, tags: Mapping[str, str] | None = None,
        drawing: Any = None, terminal: bool = False) -> dict:
    """Train one network as ``cfg`` says and log it to MLflow.

    Returns a plain, picklable dict: ``{"state": COMPLETE|PRUNED|FAIL, "objective": cfg.objective,
    "metrics": {final metrics, in the target's original units}, "run_id": MLflow run id,
    "reason": None or one line}``. A bad config or CSV raises ConfigError/DataError before any
    MLflow run is created. ``tags`` are added to the run's tags (e.g. ``sweeper.rerun_of``).
    ``drawing`` (a launcher's, e.g. ``sweeper.launcher.local.Drawing``: ``loss_curves(history,
    best_epoch, loss, tracking_uri, run_id)``) draws and logs a trial's ``loss_curves.png`` off
    the trial's path; without it the run draws its own. ``terminal``: a user watches this run
    (``python -m sweeper``, ``sweeper.rerun``): what the data is goes to stdout before training,
    and the epochs to stderr (`sweeper.app.progress`); a sweep's trial says its epochs on stdout
    once it has run 10 s.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    from sweeper.app.progress import Progress
    from sweeper.nn import SGD, Bag, make_schedule
    from sweeper.tracking.mlflow_run import flatten
    from sweeper.train import FAILED, STOPPED, EarlyStopping, fit_folds

    # One BLAS thread for the whole job process: these matrices are too small for a second
    # thread to pay, and N sweep workers on N cores must not each start N threads
    # (benchmarks/epoch_speed.py measured every contender 3-5x slower with 2 threads).
    threadpool_limits(limits=1, user_api="blas")

    validate(cfg)
    cfg = _resolved(cfg)
    dataset = load_data(cfg)
    cfg = for_task(cfg, dataset.task, len(dataset.classes), dataset.stratified)
    if terminal:
        print("\n".join(dataset.summary()), flush=True)
    cfg.split.folds = dataset.folds  # `auto` resolved: the logged config reruns as it ran
    targets = network_targets(dataset, cfg.model.output_activation)
    # One seed, independent streams: initialisation + dropout masks, and the epoch shuffling;
    # K fold networks each get a child stream of both.
    net_seed, shuffle_seed = np.random.SeedSequence(cfg.seed).spawn(2)
    net_seeds, shuffle_seeds = ([net_seed], [shuffle_seed]) if dataset.folds == 1 else (
        net_seed.spawn(dataset.folds), shuffle_seed.spawn(dataset.folds))
    try:
        nets = [_network(cfg, dataset.n_inputs, targets["train"].shape[1], seed) for seed in net_seeds]
    except MemoryError as error:
        raise ConfigError(f"model.hidden={list(cfg.model.hidden)}: the weights do not fit in memory "
                          f"({one_line(error)}); use fewer or narrower layers") from None
    schedule_keys = {k: v for k, v in cfg.schedule.items() if k != "name"}
    schedule = make_schedule(cfg.schedule.name, cfg.optimizer.lr, **schedule_keys)
    optimizers = [SGD(net.params(), momentum=cfg.optimizer.momentum, nesterov=cfg.optimizer.nesterov) for net in nets]
    stop = cfg.train.early_stopping
    early_stopping = (
        None if stop.patience is None
        else EarlyStopping(patience=stop.patience, min_delta=stop.min_delta, restore_best=stop.restore_best)
    )
    link = _trial_link()

    mlrun = _start_mlflow_run(cfg, link, run_name, tags, dataset.info())
    try:
        mlrun.log_params(flatten(OmegaConf.to_container(cfg, resolve=True)))
        mlrun.log_dataset(dataset.info())
        folds = _folds(dataset, targets)
        truth = [sets["val"] for _, _, sets in folds]  # each fold's validation rows, for its metrics
        callbacks = [_CurveLogger(mlrun, dataset, truth)]
        if link is not None:
            callbacks.append(lambda log: link.report(log.epoch, _objective_value(cfg.objective, log, dataset, truth)))
        progress = None  # the epochs shown to a user watching, or a sweep's trial after 10 s
        if terminal:
            progress = Progress(cfg.train.epochs, sys.stderr, live=sys.stderr.isatty())
        elif link is not None:
            progress = Progress(cfg.train.epochs, sys.stdout, live=False, label=f"trial {link.trial_number}",
                                after=10.0)
        if progress is not None:
            callbacks.append(progress)
        started = time.perf_counter()
        try:
            result = fit_folds(
                nets, folds,
                epochs=cfg.train.epochs,
                batch_size=cfg.train.batch_size,
                optimizers=optimizers,
                schedule=schedule,
                early_stopping=early_stopping,
                seeds=[np.random.default_rng(seed) for seed in shuffle_seeds],
                shuffle=True,
                callbacks=callbacks,
                divergence_factor=cfg.train.divergence_factor,
            )
        finally:
            train_seconds = time.perf_counter() - started
            if progress is not None:
                progress.close()
        callbacks[0].log_rest(result.history)
        net = nets[0] if len(nets) == 1 else Bag(nets)

        if result.status in FAILED:
            # No final metrics and no gap: numbers of a network that blew up or collapsed mean nothing.
            state, reason = FAIL, result.reason
            metrics = _curve_metrics(result, gap=False) | {"train_seconds": train_seconds}
        else:
            state = PRUNED if result.status == STOPPED else COMPLETE
            reason = result.reason if state == PRUNED else None
            metrics = _final_metrics(nets, dataset, targets) | _curve_metrics(result) | {"train_seconds": train_seconds}
        mlrun.log_metrics({LOGGED_AS.get(k, k): v for k, v in metrics.items()})
        with tempfile.TemporaryDirectory(prefix="sweeper-") as folder:
            artifacts.write_artifacts(Path(folder), cfg, dataset, net, result, with_model=state != FAIL,
                             mlrun=mlrun, drawing=drawing if link is not None else None)
            mlrun.log_artifacts(folder)
            if link is None and state == COMPLETE:
                # A single run's network is a model someone uses; a sweep logs only its best
                # one, once, at the end (the per-trial path stays as cheap as it was).
                mlrun.flush()
                artifacts.log_run_model(cfg, mlrun, Path(folder) / "model.npz", dataset.info())
        end_tags = {STATE_TAG: state, TRAIN_STATUS_TAG: result.status}
        end_tags |= {FAIL_REASON_TAG: reason} if state == FAIL else {}
        name = None
        if link is not None and state != COMPLETE:
            # MLflow's runs table shows a pruned run FINISHED like a complete one: its name tells.
            ended = f"pruned @{result.epochs_run}" if state == PRUNED else "failed"
            name = f"trial-{link.trial_number} ({ended})"
        mlrun.end("FAILED" if state == FAIL else "FINISHED", tags=end_tags, name=name)
    except BaseException as error:
        _end_raised(mlrun, cfg, dataset, error)
        raise
    return {"state": state, "objective": str(cfg.objective), "metrics": metrics,
            "run_id": mlrun.run_id, "reason": reason, "data": dataset.summary()}

def network_targets(dataset: Any, output_activation: str) -> dict[str, Any]:
    """What the network trains on per split: ``dataset.y_<split>``, except for a classifier of 2
    classes with one sigmoid output, whose target is the second class's column (n, 1) of 0/1."""
    import numpy as np

    binary = dataset.task == "classification" and output_activation == "sigmoid"
    return {split: np.ascontiguousarray(getattr(dataset, f"y_{split}")[:, 1:]) if binary
            else getattr(dataset, f"y_{split}") for split in SPLITS}

def _resolved(cfg: DictConfig) -> DictConfig:
    """A plain, fully resolved copy of ``cfg`` whose ``data.path`` is absolute and whose
    ``mlflow.tracking_uri`` holds no password.

    A user's relative ``data.path`` is relative to where they ran the command (Hydra's original
    working directory), so the logged config.yaml reruns from anywhere. A password in the
    tracking URI (from a config file; the command line's is gone before Hydra starts) moves to
    the environment variable its client reads, so no param or artifact holds it.
    """
    from hydra.utils import to_absolute_path

    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    container["data"]["path"] = to_absolute_path(str(container["data"]["path"]))
    if container.get("mlflow", {}).get("tracking_uri"):
        container["mlflow"]["tracking_uri"] = without_password(
            str(container["mlflow"]["tracking_uri"]), "mlflow.tracking_uri")
    return OmegaConf.create(container)

def _network(cfg: DictConfig, n_inputs: int, n_outputs: int, seed: Any) -> Any:
    """The untrained ``sweeper.nn.Network`` that ``cfg.model`` and ``cfg.regularization`` describe
    (``cfg`` after `sweeper.config.for_task`; each key but ``model.hidden`` is the `Network`
    argument of its name): squared error for regression, cross-entropy for classification."""
    import numpy as np

    from sweeper.nn import Network

    model, regularization = (OmegaConf.to_container(node, resolve=True) for node in (cfg.model, cfg.regularization))
    return Network([n_inputs, *model.pop("hidden"), n_outputs], **model, **regularization,
                   loss="cross_entropy" if cfg.data.task == "classification" else "squared_error",
                   seed=np.random.default_rng(seed))

def _trial_link() -> Any:
    """The Optuna trial this job runs as (``sweeper.sweep.trial_link.current()``), or None."""
    from sweeper.sweep.trial_link import current

    return current()

def experiment_description(info: Mapping[str, Any]) -> str:
    """One line for the MLflow experiment: the file, the target, the rows (``Dataset.info()``)."""
    return (f"{Path(info['path']).name}: {info['target']} predicted from {len(info['features'])} columns; "
            f"{sum(info['rows'].values())} of {info['rows_in_file']} rows used "
            f"({', '.join(f'{n} {split}' for split, n in info['rows'].items())}). Logged by sweeper.")

def run_description(cfg: DictConfig) -> str:
    """One line for an MLflow run: the network and how it is trained."""
    hidden = list(cfg.model.hidden)
    network = f"{cfg.model.activation} network, hidden layers {hidden}" if hidden else "linear model"
    momentum = f", momentum {cfg.optimizer.momentum:g}{' (Nesterov)' if cfg.optimizer.nesterov else ''}" \
        if cfg.optimizer.momentum else ""
    return (f"{network}, lr {cfg.optimizer.lr:g}{momentum}, {cfg.schedule.name} schedule, "
            f"batch {cfg.train.batch_size or 'full'}, up to {cfg.train.epochs} epochs")

def _start_mlflow_run(cfg: DictConfig, link: Any, run_name: str | None, tags: Mapping[str, str] | None,
                      info: Mapping[str, Any]):
    """Create the run (a child of the sweep's parent run for a trial), described, in an
    experiment described by the dataset's ``info``. Fails as StoreError or ConfigError."""
    from mlflow import MlflowClient

    from sweeper.tracking.mlflow_run import MlflowRun, environment_tags

    uri = tracking_uri(cfg.mlflow.tracking_uri)
    all_tags = environment_tags() | {NOTE_TAG: run_description(cfg)} | dict(tags or {})
    if link is not None:
        all_tags[TRIAL_TAG] = str(link.trial_number)
        run_name = run_name or f"trial-{link.trial_number}"
    else:
        reach_database(uri)  # a sweep's trials use the store its sweeper reached
        # A single run is named after what it trained, e.g. car_prices-relu-64x32 (MLflow's default
        # is a random pair of words).
        network = f"{cfg.model.activation}-{'x'.join(map(str, cfg.model.hidden))}" if cfg.model.hidden else "linear"
        run_name = run_name or f"{Path(str(info['path'])).stem}-{network}"
    try:
        client = MlflowClient(tracking_uri=uri)
        experiment_id = get_or_create_experiment(client, experiment_name(cfg), experiment_description(info))
        return MlflowRun.start(client, experiment_id, run_name=run_name, tags=all_tags,
                               parent_run_id=link.parent_run_id if link is not None else None)
    except Exception as error:
        if is_store_failure(error):
            raise store_error("mlflow.tracking_uri", uri, "starting a run", error) from None
        raise ConfigError(f"mlflow.tracking_uri={uri}: {one_line(error)}") from None

def _folds(dataset: Any, targets: Mapping[str, Any]) -> list[tuple[Any, Any, dict[str, tuple[Any, Any]]]]:
    """What each network trains on (`sweeper.train.fit_folds`): ``[(X_train, y_train, {"val": ..,
    "test": ..})]`` with the network's ``targets``; K of them, each fold's rows as its validation
    rows, for a cross-validated dataset."""
    test = (dataset.X_test, targets["test"])
    if dataset.folds == 1:
        return [(dataset.X_train, targets["train"], {"val": (dataset.X_val, targets["val"]), "test": test})]
    folds = []
    for k in range(dataset.folds):
        inside = dataset.fold_of == k
        X, y = dataset.X_train, targets["train"]
        folds.append((X[~inside], y[~inside], {"val": (X[inside], y[inside]), "test": test}))
    return folds

class _CurveLogger:
    """Trainer callback: buffers ``train_loss``, ``val_loss``, ``test_loss``, ``lr`` (for a
    classifier ``val_accuracy``, the folds' mean; cross-validated, ``val_loss_std``) per epoch.

    The buffer goes out with ``log_batch`` every 250 epochs (1000 values) and at the end, so a run
    costs a few calls. Never asks to stop. ``truth``: each fold's validation ``(X, y)`` (`_folds`).
    """

    def __init__(self, mlrun: Any, dataset: Any, truth: list[tuple[Any, Any]]) -> None:
        self.mlrun = mlrun
        self.logged_epochs = 0
        self.val_codes = [_codes(y) for _, y in truth] if dataset.task == "classification" else None

    def __call__(self, log: Any) -> bool:
        values = {f"{name}_loss": loss for name, loss in log.losses.items()} | {"lr": log.lr}
        values |= log.spread  # cross-validated: val_loss_std
        if self.val_codes is not None:
            from sweeper.train import accuracy

            values["val_accuracy"] = _mean([accuracy(codes, artifacts.predicted_codes(fold.predictions["val"]))
                                            for codes, fold in zip(self.val_codes, log.folds or [log])])
        self.mlrun.log_metrics(values, step=log.epoch)
        self.logged_epochs = log.epoch
        return False

    def log_rest(self, history: Mapping[str, list]) -> None:
        """Buffer the epochs the callback never saw (the trainer skips callbacks on divergence and collapse)."""
        n_epochs = len(history["lr"])
        for epoch in range(self.logged_epochs + 1, n_epochs + 1):
            self.mlrun.log_metrics({key: values[epoch - 1] for key, values in history.items()}, step=epoch)
        self.logged_epochs = n_epochs

def _codes(targets: Any) -> Any:
    """Class codes (n,) of a classifier's network targets: one-hot rows (n, K), or (n, 1) of 0/1."""
    return targets.argmax(axis=1) if targets.shape[1] > 1 else (targets[:, 0] > 0.5).astype(int)

def _mean(values: list[float]) -> float:
    """(1/K)·Σ values, exactly the value for K = 1."""
    import math

    return math.fsum(values) / len(values)

def _objective_value(objective: str, log: Any, dataset: Any, truth: list[tuple[Any, Any]]) -> float:
    """The objective on this epoch's validation predictions, in the target's original units (or
    on the classes' probabilities); cross-validated, its mean over the folds (each fold's network
    on its own validation rows, ``truth``: `_folds`).

    ``val_loss`` is the trainer's loss on the scaled target (or the cross-entropy), as in the curves.
    """
    from sweeper.nn import class_probabilities
    from sweeper.train import CLASSIFICATION_METRICS, METRICS

    if objective == "val_loss":
        return float(log.losses["val"])
    values = []
    for (_, y), fold in zip(truth, log.folds or [log]):
        predictions = fold.predictions["val"]
        if dataset.task == "classification":
            metric = CLASSIFICATION_METRICS[objective.removeprefix("val_")]
            values.append(metric(_codes(y), class_probabilities(predictions)))
        else:
            inverse = dataset.preprocessor.inverse_target
            values.append(METRICS[objective.removeprefix("val_")](inverse(y), inverse(predictions)))
    return _mean(values)

def _final_metrics(nets: list[Any], dataset: Any, targets: Mapping[str, Any]) -> dict[str, float]:
    """``{train,val,test}_{rmse,mae,r2}`` in original units (classification:
    ``{train,val,test}_{accuracy,log_loss,f1_macro,roc_auc}``), and ``val_loss`` of the final
    weights.

    Cross-validated (K networks): train and test are the bag's (`sweeper.nn.Bag`, the mean of the
    K networks' outputs); val is out-of-fold: each training row predicted by the network of the
    fold it was left out of, and ``val_<metric>_std`` is the metric's standard deviation over the
    K folds (each network on its own fold). ``val_rows``: the rows behind the val metrics."""
    import numpy as np

    from sweeper.nn import Bag, class_probabilities
    from sweeper.train import classification_metrics, regression_metrics

    bag = nets[0] if len(nets) == 1 else Bag(nets)
    inverse = dataset.preprocessor.inverse_target

    def scored(y: Any, codes: Any, predictions: Any) -> dict[str, float]:
        if dataset.task == "classification":
            return classification_metrics(codes, class_probabilities(predictions))
        return regression_metrics(inverse(y), inverse(predictions))

    metrics: dict[str, float] = {}
    for split in SPLITS:
        X, y, codes = getattr(dataset, f"X_{split}"), targets[split], dataset.codes(split) if dataset.classes else None
        if split == "val" and len(nets) > 1:
            X, y, codes = dataset.X_train, targets["train"], dataset.codes("train") if dataset.classes else None
            inside = [dataset.fold_of == k for k in range(len(nets))]
            per_fold = [net.forward(X[rows]) for net, rows in zip(nets, inside)]
            predictions = np.empty((len(X), y.shape[1]), dtype=y.dtype)
            for rows, fold_predictions in zip(inside, per_fold):
                predictions[rows] = fold_predictions
            # How much the validation metrics vary over the folds (each network on its own fold).
            spread = [scored(y[rows], None if codes is None else codes[rows], fold_predictions)
                      for rows, fold_predictions in zip(inside, per_fold)]
            metrics.update({f"val_{name}_std": float(np.std([fold[name] for fold in spread])) for name in spread[0]})
        else:
            predictions = bag.forward(X)
        metrics.update({f"{split}_{name}": value for name, value in scored(y, codes, predictions).items()})
        if split == "val":
            metrics["val_loss"] = bag.data_loss(predictions, y)
            metrics["val_rows"] = float(len(X))
    return metrics

def _curve_metrics(result: Any, gap: bool = True) -> dict[str, float]:
    """``best_epoch``, ``epochs_run`` and (with ``gap``) ``generalization_gap`` (val − train loss
    at the best epoch)."""
    metrics = {"best_epoch": float(result.best_epoch), "epochs_run": float(result.epochs_run)}
    if gap and result.best_epoch >= 1:
        i = result.best_epoch - 1
        metrics["generalization_gap"] = result.history["val_loss"][i] - result.history["train_loss"][i]
    return metrics

def _end_raised(mlrun: Any, cfg: DictConfig, dataset: Any, error: BaseException) -> None:
    """Log config.yaml and data.json of a run that raised ``error`` and end it KILLED (Ctrl-C, or a
    SLURM job's SIGTERM: sweeper.launcher.slurm) or FAILED. Best effort: no logging error hides
    ``error``, and nothing is tried once the store has failed."""
    if isinstance(error, KeyboardInterrupt):
        status, reason = "KILLED", f"interrupted ({str(error) or 'KeyboardInterrupt'})"
    else:
        status, reason = "FAILED", one_line(error)
    with contextlib.suppress(BaseException):
        if mlrun.broken is None:
            with tempfile.TemporaryDirectory(prefix="sweeper-") as folder:
                artifacts.write_record(Path(folder), cfg, dataset)
                mlrun.log_artifacts(folder)
    with contextlib.suppress(Exception):
        if mlrun.broken is None:
            mlrun.end(status, tags={STATE_TAG: FAIL, FAIL_REASON_TAG: reason})
