"""The mini-batch epoch loop: usable on plain arrays, without Hydra or MLflow."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from sweeper.nn import SGD, Network, Schedule, check_range, make_schedule

from .early_stopping import EarlyStopping

COMPLETED, EARLY_STOPPED, DIVERGED, COLLAPSED, STOPPED = (
    "completed", "early_stopped", "diverged", "collapsed", "stopped")
FAILED = (DIVERGED, COLLAPSED)  # the statuses of a run whose network is no model: it ends FAIL
# The output is constant when its spread on the training rows is at most this share of the
# target's: a dead layer measured 1e-17 (diamonds), weights a strong penalty crushes pass it on
# their way to 1e-18, and no network still predicting something came below 3e-4 (60 configs,
# linear, sigmoid, float32, dropout, max-norm and penalised ones included: docs/configuration.md).
COLLAPSE_TOLERANCE = 1e-6
EVAL_CHUNK = 512  # rows per forward chunk of the epoch-end evaluation (fastest of 256-1024 on diamonds 2x64)


@dataclass
class EpochLog:
    """What a callback sees after each epoch.

    ``losses`` maps ``train`` and each eval-set name to ``net.data_loss`` in evaluation mode
    (no penalties): ½·mean over rows of Σ(ŷ − y)² for squared error, the mean cross-entropy
    for cross-entropy; ``predictions`` maps the same names to ŷ, shape ``(n_rows, n_outputs)``.
    """

    epoch: int
    lr: float
    losses: dict[str, float]
    predictions: dict[str, np.ndarray]
    #: Cross-validated training (`fit_folds`, K ≥ 2): each fold network's own log; ``losses`` are
    #: then their means, ``predictions`` is empty and ``spread`` holds ``val_loss_std``, the
    #: population standard deviation of the K validation losses.
    folds: list["EpochLog"] = field(default_factory=list)
    spread: dict[str, float] = field(default_factory=dict)


Callback = Callable[[EpochLog], "bool | None"]


@dataclass
class TrainResult:
    """``history`` maps ``train_loss``, ``<set>_loss`` and ``lr`` to one value per epoch run."""

    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int = 0
    epochs_run: int = 0
    status: str = COMPLETED
    reason: str | None = None


def check_fit_arguments(
    epochs: int, batch_size: int | None = None, divergence_factor: float | None = None
) -> None:
    """RangeError naming the first of ``fit``'s numbers out of its range: ``fit`` calls it first,
    and settings can be checked with it before there is data to fit (``sweeper.config.validate``)."""
    check_range("epochs", epochs, lambda v: v >= 1, ">= 1")
    check_range("batch_size", batch_size, lambda v: v >= 1, ">= 1", none_ok=True)
    check_range("divergence_factor", divergence_factor, lambda v: v > 1, "> 1", none_ok=True)


def fit(
    net: Network,
    X_train: np.ndarray,
    y_train: np.ndarray,
    *,
    epochs: int,
    batch_size: int | None = None,
    optimizer: SGD | None = None,
    schedule: Schedule | None = None,
    eval_sets: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    early_stopping: EarlyStopping | None = None,
    seed: int | np.random.Generator = 0,
    shuffle: bool = True,
    callbacks: Sequence[Callback] = (),
    divergence_factor: float | None = None,
) -> TrainResult:
    """Train ``net`` in place by mini-batch SGD.

    X_train: ``(n, n_inputs)``, y_train: ``(n, n_outputs)`` or ``(n,)`` (one-hot rows for a
    softmax network, 0/1 for a single sigmoid output with cross-entropy). ``batch_size`` None
    means full batch. Rows are reshuffled every epoch from ``seed`` when ``shuffle``.
    ``optimizer`` None is plain SGD. The schedule (None: a constant 0.01) gives the learning
    rate of every step of an epoch, asked once before it (t = epochs completed), and observes
    the validation loss (``eval_sets["val"]``, else the training loss) after it. Early
    stopping monitors the validation loss. A callback returning True stops training
    (status ``stopped``). Training stops with status ``diverged`` when a loss is not finite, or
    when ``divergence_factor`` (> 1) is set and the training loss exceeds divergence_factor × L₀,
    L₀ the training loss of the untrained network (epoch 0, evaluation mode): losses that grow
    without bound but stay finite for a while (8e170 by epoch 10) end there, before any
    callback (an Optuna pruner) sees them. It stops the same way, status ``collapsed``, when the
    predictions on the training rows have become a constant (``collapsed``: typically every ReLU
    of a layer dead and ŷ the output bias, a finite loss no bound sees), which no gradient leads
    out of and restoring an earlier epoch would only hide. Neither restores the best epoch.
    """
    return fit_folds(
        [net], [(X_train, y_train, eval_sets or {})], epochs=epochs, batch_size=batch_size,
        optimizers=[optimizer or SGD(net.params())], schedule=schedule, early_stopping=early_stopping,
        seeds=[seed], shuffle=shuffle, callbacks=callbacks, divergence_factor=divergence_factor,
    )


def fit_folds(
    nets: Sequence[Network],
    folds: Sequence[tuple[np.ndarray, np.ndarray, Mapping[str, tuple[np.ndarray, np.ndarray]]]],
    *,
    epochs: int,
    batch_size: int | None = None,
    optimizers: Sequence[SGD] | None = None,
    schedule: Schedule | None = None,
    early_stopping: EarlyStopping | None = None,
    seeds: Sequence[int | np.random.Generator] | None = None,
    shuffle: bool = True,
    callbacks: Sequence[Callback] = (),
    divergence_factor: float | None = None,
) -> TrainResult:
    """Train K networks in lockstep, epoch by epoch, as `fit` trains one: network k on its
    fold ``folds[k] = (X_train_k, y_train_k, eval_sets_k)`` with ``optimizers[k]`` and rows
    shuffled from ``seeds[k]``, every network at the same learning rate.

    After each epoch the losses of each set are averaged over the K networks,
    L̄ = (1/K)·Σₖ Lₖ (K = 1: the network's own, bit for bit); ``history`` holds those means and,
    for K ≥ 2, ``val_loss_std`` = the population standard deviation of the K validation losses.
    The schedule observes, early stopping monitors and the callbacks see the mean validation
    loss (an `EpochLog` whose ``folds`` holds each network's own log for K ≥ 2), so one
    patience, one pruning decision and one best epoch hold for all K; restoring the best epoch
    restores every network's weights of that epoch. One network diverging or collapsing ends
    the whole run (its fold named in ``reason``).
    """
    check_fit_arguments(epochs, batch_size, divergence_factor)
    if len(nets) != len(folds) or not nets:
        raise ValueError(f"{len(nets)} networks for {len(folds)} folds")
    optimizers = optimizers or [SGD(net.params()) for net in nets]
    seeds = seeds if seeds is not None else np.random.SeedSequence(0).spawn(len(nets))
    learners = [_Learner(net, X, y, sets, optimizer, seed, batch_size, shuffle)
                for net, (X, y, sets), optimizer, seed in zip(nets, folds, optimizers, seeds)]
    schedule = schedule or make_schedule("constant", 0.01)
    monitor = "val" if "val" in learners[0].sets else "train"
    if early_stopping is not None and monitor != "val":
        raise ValueError("early stopping needs a validation set: eval_sets['val']")
    several = len(learners) > 1
    every = _Networks([learner.net for learner in learners])

    result = TrainResult(history={f"{name}_loss": [] for name in learners[0].sets} | {"lr": []})
    if several:
        result.history[f"{monitor}_loss_std"] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bounds = [learner.bound(divergence_factor) for learner in learners]
        for epoch in range(1, epochs + 1):
            lr = schedule.learning_rate(epoch - 1)
            logs = []
            for learner in learners:
                learner.train_epoch(lr)
                predictions = learner.predict()
                losses = {name: learner.net.data_loss(predictions[name], learner.sets[name][1]) for name in predictions}
                logs.append(EpochLog(epoch, lr, losses, predictions))
            losses = logs[0].losses if not several else {
                name: math.fsum(log.losses[name] for log in logs) / len(logs) for name in logs[0].losses}
            for name, value in losses.items():
                result.history[f"{name}_loss"].append(value)
            result.history["lr"].append(lr)
            spread = {f"{monitor}_loss_std": float(np.std([log.losses[monitor] for log in logs]))} if several else {}
            for name, value in spread.items():
                result.history[name].append(value)
            result.epochs_run = epoch

            for k, (learner, log, bound) in enumerate(zip(learners, logs, bounds), 1):
                fold = f"fold {k}: " if several else ""
                bad = [name for name, value in log.losses.items() if not math.isfinite(value)]
                if bad or log.losses["train"] > bound:
                    result.status = DIVERGED
                    result.reason = fold + (
                        f"{bad[0]}_loss became {log.losses[bad[0]]} at epoch {epoch} (lr={lr:g})" if bad else
                        f"train_loss {log.losses['train']:.3g} at epoch {epoch} exceeded divergence_factor "
                        f"{divergence_factor:g} x the untrained network's {bound / divergence_factor:.3g} (lr={lr:g})"
                    )
                    break
                if collapsed(log.predictions["train"], learner.target_spread):
                    result.status = COLLAPSED
                    cause = _collapse_cause(learner.net, learner.X, log.predictions["train"], learner.target_spread)
                    result.reason = (f"{fold}the network's output collapsed to a constant at epoch {epoch} "
                                     f"({cause}; lr={lr:g})")
                    break
            if result.status in FAILED:
                break
            schedule.observe(losses[monitor])
            # Early stopping records this epoch before a callback may stop training, so a
            # pruned run's best epoch and restored weights include its last epoch.
            patience_ran_out = early_stopping is not None and early_stopping.update(
                epoch, losses[monitor], every
            )
            log = logs[0] if not several else EpochLog(epoch, lr, losses, {}, folds=logs, spread=spread)
            if any([bool(callback(log)) for callback in callbacks]):
                result.status = STOPPED
                result.reason = f"stopped by a callback at epoch {epoch}"
                break
            if patience_ran_out:
                result.status = EARLY_STOPPED
                result.reason = (
                    f"val_loss did not improve for {early_stopping.patience} epochs "
                    f"after epoch {early_stopping.best_epoch}"
                )
                break

    if early_stopping is not None:
        if result.status not in FAILED:
            early_stopping.restore(every)
        result.best_epoch = early_stopping.best_epoch
    else:
        curve = np.asarray(result.history[f"{monitor}_loss"], dtype=np.float64)
        finite = np.where(np.isfinite(curve), curve, np.inf)
        result.best_epoch = int(np.argmin(finite)) + 1 if np.isfinite(finite).any() else 0
    return result


class _Learner:
    """One network's training state: its rows (copied once into the network's dtype), its
    evaluation sets (``train`` first), optimiser, shuffling stream and reused buffers."""

    def __init__(self, net: Network, X_train: np.ndarray, y_train: np.ndarray,
                 eval_sets: Mapping[str, tuple[np.ndarray, np.ndarray]], optimizer: SGD,
                 seed: int | np.random.Generator, batch_size: int | None, shuffle: bool) -> None:
        self.net, self.optimizer, self.shuffle = net, optimizer, shuffle
        self.X = np.ascontiguousarray(X_train, dtype=net.dtype)
        self.y = np.ascontiguousarray(np.reshape(y_train, (len(y_train), -1)), dtype=net.dtype)
        n = len(self.X)
        self.batch = n if batch_size is None else min(int(batch_size), n)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.sets = {"train": (self.X, self.y)}
        for name, (Xs, ys) in eval_sets.items():
            self.sets[name] = (
                np.ascontiguousarray(Xs, dtype=net.dtype),
                np.ascontiguousarray(np.reshape(ys, (len(ys), -1)), dtype=net.dtype),
            )
        # Every batch reuses these buffers: no allocation per batch.
        self.workspace = net.workspace(self.batch)
        # The rows in this epoch's order, copied once per epoch: every batch is then a contiguous
        # slice, not a gather of its own.
        self.X_epoch, self.y_epoch = (np.empty_like(self.X), np.empty_like(self.y)) if shuffle else (self.X, self.y)
        largest_set = max(len(Xs) for Xs, _ in self.sets.values())
        # Evaluation goes through in chunks small enough to stay in cache, whatever the batch size.
        self.eval_workspace = net.workspace(min(EVAL_CHUNK, largest_set), training=False)
        self.grads = [*self.workspace.dW, *self.workspace.db]
        self.target_spread = self.y.std(axis=0, dtype=np.float64)

    def bound(self, divergence_factor: float | None) -> float:
        """divergence_factor × the untrained network's training loss, or ∞ without a factor."""
        if divergence_factor is None:
            return math.inf
        untrained = self.net.data_loss(self.net.forward(self.X, self.eval_workspace), self.y)
        return divergence_factor * max(untrained, np.finfo(np.float64).tiny)

    def train_epoch(self, lr: float) -> None:
        """One pass over the rows (reshuffled when ``shuffle``) in mini-batches at rate ``lr``."""
        X, y = self.X, self.y
        if self.shuffle:
            order = self.rng.permutation(len(X))
            # mode="clip" skips the bounds check that would make take() buffer its output.
            np.take(X, order, axis=0, out=self.X_epoch, mode="clip")
            np.take(y, order, axis=0, out=self.y_epoch, mode="clip")
        for start in range(0, len(X), self.batch):
            self.net.loss_and_grad(self.X_epoch[start : start + self.batch], self.y_epoch[start : start + self.batch],
                                   workspace=self.workspace)
            self.optimizer.update_params(self.grads, lr)
            self.net.apply_max_norm()

    def predict(self) -> dict[str, np.ndarray]:
        """ŷ of every set, evaluation mode."""
        return {name: self.net.forward(Xs, self.eval_workspace) for name, (Xs, _) in self.sets.items()}


class _Networks:
    """K ≥ 1 networks as one for `EarlyStopping`: their parameters are saved and restored together."""

    def __init__(self, nets: Sequence[Network]) -> None:
        self.nets = nets

    def get_params(self) -> tuple:
        return tuple(net.get_params() for net in self.nets)

    def set_params(self, *params: tuple) -> None:
        for net, (weights, biases) in zip(self.nets, params):
            net.set_params(weights, biases)


def collapsed(y_pred: np.ndarray, target_spread: np.ndarray) -> bool:
    """Whether predictions ``y_pred`` ``(n, K)`` are a constant: std_rows(ŷₖ) ≤ COLLAPSE_TOLERANCE ×
    σₖ for every output k whose target varies, σₖ = ``target_spread[k]`` (the target's std over
    the same rows; a classifier's one-hot columns: constant class probabilities). False when no
    target column varies: a constant is then the right answer."""
    varies = target_spread > 0
    spread = y_pred.std(axis=0, dtype=np.float64)
    return bool(varies.any()) and bool(np.all(spread[varies] <= COLLAPSE_TOLERANCE * target_spread[varies]))


def _collapse_cause(net: Network, X: np.ndarray, y_pred: np.ndarray, target_spread: np.ndarray) -> str:
    """Why ŷ is constant, in words: the first hidden layer whose units are all dead on X (ReLUs
    dying), else the predictions' spread as a share of the target's and the dead units per layer
    (weights shrunk towards zero, saturated units)."""
    dead = net.dead_units(X)
    widths = net.sizes[1:-1]
    layer = next((number for number, (n_dead, width) in enumerate(zip(dead, widths), 1) if n_dead == width), None)
    if layer is not None:
        return f"every hidden unit of layer {layer} dead"
    varies = target_spread > 0
    share = float(np.max(y_pred.std(axis=0, dtype=np.float64)[varies] / target_spread[varies]))
    units = f"; hidden units dead: {', '.join(f'{n}/{w}' for n, w in zip(dead, widths))}" if widths else ""
    return f"its spread over the training rows {share:.2g} x the target's{units}"
