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
    check_fit_arguments(epochs, batch_size, divergence_factor)
    X = np.ascontiguousarray(X_train, dtype=net.dtype)
    y = np.ascontiguousarray(np.reshape(y_train, (len(y_train), -1)), dtype=net.dtype)
    n = len(X)
    batch = n if batch_size is None else min(int(batch_size), n)
    optimizer = optimizer or SGD(net.params())
    schedule = schedule or make_schedule("constant", 0.01)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sets = {"train": (X, y)}
    for name, (Xs, ys) in (eval_sets or {}).items():
        sets[name] = (
            np.ascontiguousarray(Xs, dtype=net.dtype),
            np.ascontiguousarray(np.reshape(ys, (len(ys), -1)), dtype=net.dtype),
        )
    monitor = "val" if "val" in sets else "train"
    if early_stopping is not None and monitor != "val":
        raise ValueError("early stopping needs a validation set: eval_sets['val']")

    # Every batch reuses these buffers: no allocation per batch.
    workspace = net.workspace(batch)
    # The rows in this epoch's order, copied once per epoch: every batch is then a contiguous
    # slice, not a gather of its own.
    X_epoch, y_epoch = (np.empty_like(X), np.empty_like(y)) if shuffle else (X, y)
    largest_set = max(len(Xs) for Xs, _ in sets.values())
    # Evaluation goes through in chunks small enough to stay in cache, whatever the batch size.
    eval_workspace = net.workspace(min(EVAL_CHUNK, largest_set), training=False)
    grads = [*workspace.dW, *workspace.db]

    result = TrainResult(history={f"{name}_loss": [] for name in sets} | {"lr": []})
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bound = math.inf
        target_spread = y.std(axis=0, dtype=np.float64)
        if divergence_factor is not None:
            bound = divergence_factor * max(net.data_loss(net.forward(X, eval_workspace), y), np.finfo(np.float64).tiny)
        for epoch in range(1, epochs + 1):
            lr = schedule.learning_rate(epoch - 1)
            if shuffle:
                order = rng.permutation(n)
                # mode="clip" skips the bounds check that would make take() buffer its output.
                np.take(X, order, axis=0, out=X_epoch, mode="clip")
                np.take(y, order, axis=0, out=y_epoch, mode="clip")
            for start in range(0, n, batch):
                net.loss_and_grad(X_epoch[start : start + batch], y_epoch[start : start + batch], workspace=workspace)
                optimizer.update_params(grads, lr)
                net.apply_max_norm()

            predictions = {name: net.forward(Xs, eval_workspace) for name, (Xs, _) in sets.items()}
            losses = {name: net.data_loss(predictions[name], sets[name][1]) for name in sets}
            for name, value in losses.items():
                result.history[f"{name}_loss"].append(value)
            result.history["lr"].append(lr)
            result.epochs_run = epoch

            bad = [name for name, value in losses.items() if not math.isfinite(value)]
            if bad or losses["train"] > bound:
                result.status = DIVERGED
                result.reason = (
                    f"{bad[0]}_loss became {losses[bad[0]]} at epoch {epoch} (lr={lr:g})" if bad else
                    f"train_loss {losses['train']:.3g} at epoch {epoch} exceeded divergence_factor "
                    f"{divergence_factor:g} x the untrained network's {bound / divergence_factor:.3g} (lr={lr:g})"
                )
                break
            if collapsed(predictions["train"], target_spread):
                result.status = COLLAPSED
                result.reason = (f"the network's output collapsed to a constant at epoch {epoch} "
                                 f"({_collapse_cause(net, X, predictions['train'], target_spread)}; lr={lr:g})")
                break
            schedule.observe(losses[monitor])
            # Early stopping records this epoch before a callback may stop training, so a
            # pruned run's best epoch and restored weights include its last epoch.
            patience_ran_out = early_stopping is not None and early_stopping.update(
                epoch, losses[monitor], net
            )
            log = EpochLog(epoch, lr, losses, predictions)
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
            early_stopping.restore(net)
        result.best_epoch = early_stopping.best_epoch
    else:
        curve = np.asarray(result.history[f"{monitor}_loss"], dtype=np.float64)
        finite = np.where(np.isfinite(curve), curve, np.inf)
        result.best_epoch = int(np.argmin(finite)) + 1 if np.isfinite(finite).any() else 0
    return result


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
