"""Milliseconds per training epoch: sweeper.nn against scikit-learn and PyTorch on the CPU.

Every contender trains the same network on the same data in the same run:

- regression data: ``load_dataset`` with a seeded 80/10/10 split (diamonds: 43,152 training
  rows, 26 inputs; car_prices: 643 rows, 17 inputs), standardised inputs and target;
- classification data: digits, 8×8 images of handwritten digits (1,797 rows, 64 pixel inputs,
  target ``digit`` with 10 classes), split 80/10/10 by a seeded stratified
  ``train_test_split`` (1,437 training rows), inputs standardised with the training rows'
  mean and standard deviation (a constant pixel is divided by 1), targets one-hot for ours;
- network: inputs → width → width → outputs, ReLU, He init; regression: one identity output,
  loss ½·mean((ŷ − y)²); digits: 10 softmax outputs, loss the mean cross-entropy
  −mean(log p of the true class);
- optimiser: SGD, learning rate 1e-3, momentum 0.9 (not Nesterov), no penalty, rows
  reshuffled every epoch, no early stopping;
- ours: ``sweeper.train.fit``, which also evaluates the train, validation and test sets at
  the end of every epoch (that evaluation is counted in our time, the peers do none);
- scikit-learn: ``MLPRegressor`` (regression) or ``MLPClassifier`` on the integer labels
  (digits), both ``solver="sgd", alpha=0, shuffle=True, tol=0, n_iter_no_change=∞``, fitted
  for a known number of epochs (they compute in the input's dtype, so float32 rows really run
  in float32);
- PyTorch (when importable): a plain loop with ``torch.optim.SGD(momentum=0.9)`` over the same
  permutations as ours, loss ½·mean((ŷ − y)²) like ours and scikit-learn's, or for digits
  ``torch.nn.CrossEntropyLoss`` (mean) on the logits and the integer labels.

Repeats are interleaved (ours, scikit-learn, PyTorch, ours, …) and each figure is the median
ms/epoch. ``limit`` is the GEMM-bound time of an epoch, 6 × rows × weights FLOPs divided by
this machine's best matrix-multiply throughput in that dtype (a 2048×512 by 512×512 product,
timed at the start and between the repeats of each row). Every contender gets the same number
of BLAS threads, 1 unless ``--threads`` says otherwise: these matrices are too small for a
second thread to pay, and on a shared machine spinning BLAS threads cost several times over.

After the table:
- the peak memory that training diamonds allocates (tracemalloc);
- where our epoch goes (``breakdown``): the parts of ``fit``'s work replayed alone, each once
  per repeat right after the contenders (same load), medians: the training GEMMs beyond the
  limit, the elementwise work, the Python and NumPy call cost per batch, the SGD step, the
  epoch's shuffled copy, the end-of-epoch evaluation, and what is left;
- issue 17's targets on diamonds 2×64 batch 256 (ours/scikit-learn ≤ 0.5 in float32 and
  ≤ 0.7 in float64, ours/PyTorch ≤ 0.8 in float32), PASS or MISS, from this run's ratios.

    python benchmarks/epoch_speed.py                      # the whole grid (several minutes)
    python benchmarks/epoch_speed.py --dataset diamonds --hidden 64 --batch 256
    python benchmarks/epoch_speed.py --dataset digits --repeats 3
    python benchmarks/epoch_speed.py --quick --json       # seconds; a JSON list of rows
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from sweeper.data import load_dataset
from sweeper.nn import SGD, Network, make_schedule
from sweeper.train import fit
from sweeper.train.trainer import EVAL_CHUNK

DATA = Path(__file__).resolve().parents[1] / "data"
DATASETS = {"car_prices": ("car_prices.csv", "Price"), "diamonds": ("diamonds.csv", "price"),
            "digits": ("digits.csv", "digit")}
CLASSIFICATION = {"digits"}  # softmax output, cross-entropy; the others are regression
WIDTHS = (32, 64, 256)
BATCHES = ("32", "256", "full")
DTYPES = ("float32", "float64")
LEARNING_RATE = 1e-3
MOMENTUM = 0.9
SEED = 0
SECONDS_PER_MEASUREMENT = 0.25  # picks the epochs per timed fit
MAX_EPOCHS = 50
# Issue 17's targets, ours/peer on the headline case (diamonds 2×64, batch 256): (dtype, peer) → bound.
TARGET_CASE = ("diamonds", 64, "256")
TARGETS = {("float32", "sklearn"): 0.5, ("float32", "torch"): 0.8, ("float64", "sklearn"): 0.7}


@dataclass(frozen=True)
class Case:
    dataset: str
    hidden: int
    batch: str  # "32", "256" or "full"
    dtype: str

    def batch_size(self, n_rows: int) -> int:
        return n_rows if self.batch == "full" else min(int(self.batch), n_rows)

    @property
    def classification(self) -> bool:
        return self.dataset in CLASSIFICATION


@dataclass(frozen=True)
class Classes:
    """A classification dataset split and standardised like ``load_dataset``'s: ``y_*`` one-hot
    rows ``(n, n_classes)`` in the inputs' dtype for ours, ``labels_train`` the integer class
    codes for the peers."""

    X_train: np.ndarray
    y_train: np.ndarray
    labels_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_inputs(self) -> int:
        return self.X_train.shape[1]

    @property
    def eval_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {"val": (self.X_val, self.y_val), "test": (self.X_test, self.y_test)}


def load_classes(path: Path, target: str, dtype: str) -> Classes:
    """Seeded stratified 80/10/10 split of the CSV at ``path``, inputs standardised with the
    training rows' mean and standard deviation (0 replaced by 1)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(path)
    X = frame.drop(columns=[target]).to_numpy(np.float64)
    _, codes = np.unique(frame[target].to_numpy(), return_inverse=True)
    rows = np.arange(len(X))
    train, rest = train_test_split(rows, test_size=0.2, stratify=codes, random_state=SEED)
    val, test = train_test_split(rest, test_size=0.5, stratify=codes[rest], random_state=SEED)
    mean, std = X[train].mean(axis=0), X[train].std(axis=0)
    std[std == 0] = 1.0
    one_hot = np.eye(codes.max() + 1, dtype=dtype)

    def inputs(split):
        return np.ascontiguousarray((X[split] - mean) / std, dtype=dtype)

    return Classes(inputs(train), one_hot[codes[train]], codes[train].astype(np.int64),
                   inputs(val), one_hot[codes[val]], inputs(test), one_hot[codes[test]])


def load(dataset: str, dtype: str):
    filename, target = DATASETS[dataset]
    if dataset in CLASSIFICATION:
        return load_classes(DATA / filename, target, dtype)
    return load_dataset(DATA / filename, target=target, test_size=0.1, val_size=0.1, seed=SEED,
                        dtype=dtype)


def n_outputs(data) -> int:
    return data.y_train.shape[1]


# --------------------------------------------------------------------------- contenders
def network(case: Case, sizes: list[int]) -> Network:
    """The case's network with layer widths ``sizes``: ReLU, He init, identity output and squared
    error (regression) or softmax and cross-entropy (classification)."""
    output = {"output_activation": "softmax", "loss": "cross_entropy"} if case.classification else {}
    return Network(sizes, activation="relu", init="he", seed=SEED, dtype=case.dtype, **output)


def layer_sizes(data, case: Case) -> list[int]:
    return [data.n_inputs, case.hidden, case.hidden, n_outputs(data)]


def train_ours(data, case: Case, epochs: int) -> None:
    net = network(case, layer_sizes(data, case))
    result = fit(net, data.X_train, data.y_train, epochs=epochs,
                 batch_size=case.batch_size(len(data.X_train)),
                 optimizer=SGD(net.params(), momentum=MOMENTUM),
                 schedule=make_schedule("constant", LEARNING_RATE),
                 eval_sets=data.eval_sets, seed=SEED)
    if result.epochs_run != epochs:
        raise RuntimeError(f"{case}: sweeper stopped after {result.epochs_run} epochs: {result.reason}")


def train_sklearn(data, case: Case, epochs: int) -> None:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    n = len(data.X_train)
    mlp = (MLPClassifier if case.classification else MLPRegressor)(
        hidden_layer_sizes=(case.hidden, case.hidden), activation="relu", solver="sgd",
        alpha=0.0, batch_size=case.batch_size(n), learning_rate_init=LEARNING_RATE,
        momentum=MOMENTUM, nesterovs_momentum=False, shuffle=True, max_iter=epochs,
        tol=0.0, n_iter_no_change=10**9, early_stopping=False, random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
        mlp.fit(data.X_train, data.labels_train if case.classification else data.y_train.ravel())
    if mlp.n_iter_ != epochs or mlp.coefs_[0].dtype != np.dtype(case.dtype):
        raise RuntimeError(f"{case}: scikit-learn ran {mlp.n_iter_} epochs in {mlp.coefs_[0].dtype}")


def train_torch(data, case: Case, epochs: int) -> None:
    import torch

    dtype = getattr(torch, case.dtype)
    torch.manual_seed(SEED)
    X = torch.from_numpy(data.X_train)
    y = torch.from_numpy(data.labels_train if case.classification else data.y_train)
    n, batch = len(X), case.batch_size(len(X))
    width = case.hidden
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], width), torch.nn.ReLU(),
        torch.nn.Linear(width, width), torch.nn.ReLU(),
        torch.nn.Linear(width, n_outputs(data)),
    ).to(dtype)
    if case.classification:
        cross_entropy = torch.nn.CrossEntropyLoss()  # mean over rows, on the logits

        def loss_of(xb, yb):
            return cross_entropy(model(xb), yb)
    else:
        def loss_of(xb, yb):
            return 0.5 * torch.mean((model(xb) - yb) ** 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)
    rng = np.random.default_rng(SEED)  # the same permutations as ours
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb, yb = X.index_select(0, idx), y.index_select(0, idx)
            optimizer.zero_grad(set_to_none=True)
            loss_of(xb, yb).backward()
            optimizer.step()


PEERS = {"sklearn": train_sklearn, "torch": train_torch}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- measuring
def seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def gemm_gflops(dtype: str, repeats: int = 7) -> float:
    """Best matrix-multiply throughput of this machine's BLAS in ``dtype``, GFLOP/s."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2048, 512)).astype(dtype)
    B = rng.standard_normal((512, 512)).astype(dtype)
    C = np.empty((2048, 512), dtype)
    np.matmul(A, B, out=C)
    best = min(seconds(np.matmul, A, B, C) for _ in range(repeats))
    return 2.0 * 2048 * 512 * 512 / best / 1e9


def n_weights(n_inputs: int, hidden: int, outputs: int = 1) -> int:
    return n_inputs * hidden + hidden * hidden + hidden * outputs


def measure(data, case: Case, peers: list[str], repeats: int,
            parts: dict[str, Callable[[], None]] | None = None) -> dict:
    """Median ms/epoch of ours and each peer, repeats interleaved, and ``gflops``: the best
    matrix-multiply throughput seen between them (the machine may be shared). ``parts`` (see
    ``epoch_parts``) are timed once per repeat too, after the contenders, so that they see the
    same load: their medians, ms, under ``"parts"``."""
    contenders = {"ours": train_ours} | {name: PEERS[name] for name in peers}
    parts = parts or {}
    for train in contenders.values():  # warm-up: imports, caches, allocator
        train(data, case, 1)
    for part in parts.values():
        part()
    epochs = max(1, min(MAX_EPOCHS, math.ceil(SECONDS_PER_MEASUREMENT / seconds(train_ours, data, case, 1))))
    times: dict[str, list[float]] = {name: [] for name in contenders}
    part_times: dict[str, list[float]] = {name: [] for name in parts}
    gflops = 0.0
    for _ in range(repeats):
        for name, train in contenders.items():
            times[name].append(1000.0 * seconds(train, data, case, epochs) / epochs)
        for name, part in parts.items():
            part_times[name].append(1000.0 * seconds(part))
        gflops = max(gflops, gemm_gflops(case.dtype, repeats=3))
    return ({name: statistics.median(values) for name, values in times.items()}
            | {"gflops": gflops, "parts": {name: statistics.median(v) for name, v in part_times.items()}})


def epoch_parts(data, case: Case) -> dict[str, Callable[[], None]]:
    """One epoch's worth of each part of ``fit``'s work, replayed alone on the case's network,
    data and batches, as functions to time; ``breakdown`` turns their times into the parts of
    an epoch."""
    X = np.ascontiguousarray(data.X_train)
    y = np.ascontiguousarray(np.reshape(data.y_train, (len(X), -1)))
    n, batch = len(X), case.batch_size(len(X))
    sizes = layer_sizes(data, case)
    net = network(case, sizes)
    workspace = net.workspace(batch)
    # The updates go to a copy: the same gradient applied again and again would make the
    # network's own weights, and the arithmetic timed after them, blow up.
    optimizer = SGD(network(case, sizes).params(), momentum=MOMENTUM)
    grads = [*workspace.dW, *workspace.db]
    sets = {"train": (X, y)} | dict(data.eval_sets)
    eval_workspace = net.workspace(min(EVAL_CHUNK, max(len(Xs) for Xs, _ in sets.values())), training=False)
    rng = np.random.default_rng(SEED)
    X_epoch, y_epoch = np.empty_like(X), np.empty_like(y)
    starts = range(0, n, batch)

    tiny_sizes = [1] * (len(sizes) - 1) + [sizes[-1]]
    tiny = network(case, tiny_sizes)
    tiny_workspace = tiny.workspace(1)
    tiny_optimizer = SGD(network(case, tiny_sizes).params(), momentum=MOMENTUM)
    tiny_grads = [*tiny_workspace.dW, *tiny_workspace.db]
    tiny_X, tiny_y = X_epoch[:1, :1], y_epoch[:1]

    def shuffle():
        order = rng.permutation(n)
        np.take(X, order, axis=0, out=X_epoch, mode="clip")
        np.take(y, order, axis=0, out=y_epoch, mode="clip")

    def forward_backward():
        for start in starts:
            net.loss_and_grad(X_epoch[start : start + batch], y_epoch[start : start + batch], workspace=workspace)

    def update():
        for _ in starts:
            optimizer.update_params(grads, LEARNING_RATE)

    def tiny_forward_backward():
        for _ in starts:
            tiny.loss_and_grad(tiny_X, tiny_y, workspace=tiny_workspace)

    def tiny_update():
        for _ in starts:
            tiny_optimizer.update_params(tiny_grads, LEARNING_RATE)

    def evaluation():
        for Xs, ys in sets.values():
            net.data_loss(net.forward(Xs, eval_workspace), ys)

    parts = {"shuffle": shuffle, "forward_backward": forward_backward, "update": update,
             "tiny_forward_backward": tiny_forward_backward, "tiny_update": tiny_update,
             "evaluation": evaluation,
             "gemm": gemm_replay(sizes, case.dtype, [len(X_epoch[s : s + batch]) for s in starts], True),
             "tiny_gemm": gemm_replay(tiny_sizes, case.dtype, [1] * len(starts), True),
             "eval_gemm": gemm_replay(sizes, case.dtype, [min(EVAL_CHUNK, len(Xs) - s) for Xs, _ in sets.values()
                                                          for s in range(0, len(Xs), EVAL_CHUNK)], False)}
    shuffle()
    return parts


def breakdown(t: dict[str, float]) -> dict[str, float]:
    """Where an epoch of ``fit`` goes, ms, from the times ``t`` of ``epoch_parts``:

    - ``calls``: Python and NumPy dispatch: ``loss_and_grad`` and ``update_params`` once per
      batch on a network of the same depth one unit wide, given one row (arithmetic ≈ 0);
    - ``gemm``: the arithmetic of every batch's matrix products (``np.dot`` of the shapes
      ``loss_and_grad`` multiplies, on random arrays: z = aW, ∂W = aᵀδ, ∂b = 1ᵀδ, δWᵀ), minus
      the same calls' cost on the one-unit network;
    - ``elementwise``: the rest of ``loss_and_grad``'s arithmetic (bias, activation, f′, loss,
      output error): its time minus the one-unit network's, minus ``gemm``;
    - ``optimizer``: ``SGD.update_params``'s arithmetic, minus the one-unit network's;
    - ``shuffle``: one permutation and the permuted copy of the training rows;
    - ``evaluation``: forward passes over the train, validation and test sets and their losses,
      with ``eval_gemm`` its matrix products.
    """
    gemm = t["gemm"] - t["tiny_gemm"]
    return {
        "gemm": gemm,
        "elementwise": t["forward_backward"] - t["tiny_forward_backward"] - gemm,
        "optimizer": t["update"] - t["tiny_update"],
        "calls": t["tiny_forward_backward"] + t["tiny_update"],
        "shuffle": t["shuffle"],
        "evaluation": t["evaluation"],
        "eval_gemm": t["eval_gemm"],
    }


def gemm_replay(sizes: list[int], dtype: str, batches: list[int], backward: bool):
    """A function making the matrix products of a forward (and with ``backward`` a backward)
    pass of a network with widths ``sizes`` over batches of ``batches`` rows, as ``np.dot``
    calls into preallocated arrays of random numbers."""
    rng = np.random.default_rng(0)

    def array(*shape):
        return rng.standard_normal(shape).astype(dtype)

    rows = max(batches)
    layers = list(zip(sizes[:-1], sizes[1:]))
    # Read: inputs a, errors δ, weights W; written, never read: z, ∂W, ∂b, δWᵀ.
    a, delta = [array(rows, fan_in) for fan_in, _ in layers], [array(rows, fan_out) for _, fan_out in layers]
    W = [array(fan_in, fan_out) for fan_in, fan_out in layers]
    z, back = [np.empty_like(d) for d in delta], [np.empty_like(x) for x in a]
    dW, db, ones = [np.empty_like(w) for w in W], [np.empty(w.shape[1], dtype) for w in W], np.ones(rows, dtype)

    def replay():
        for m in batches:
            for i in range(len(layers)):
                np.dot(a[i][:m], W[i], out=z[i][:m])
            if not backward:
                continue
            for i in reversed(range(len(layers))):
                np.dot(a[i][:m].T, delta[i][:m], out=dW[i])
                np.dot(ones[:m], delta[i][:m], out=db[i])
                if i > 0:
                    np.dot(delta[i][:m], W[i].T, out=back[i][:m])

    return replay


def peak_training_memory(data, case: Case) -> dict[str, float]:
    """Peak bytes allocated while training one epoch, against 3 × (X_train + weights)."""
    net = Network([data.n_inputs, case.hidden, case.hidden, 1], seed=SEED, dtype=case.dtype)
    design = data.X_train.nbytes
    weights = sum(p.nbytes for p in net.params())
    tracemalloc.start()
    tracemalloc.reset_peak()
    fit(net, data.X_train, data.y_train, epochs=1, batch_size=case.batch_size(len(data.X_train)),
        optimizer=SGD(net.params(), momentum=MOMENTUM), schedule=make_schedule("constant", LEARNING_RATE),
        eval_sets=data.eval_sets)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak_mb": peak / 1e6, "design_mb": design / 1e6, "weights_mb": weights / 1e6,
            "bound_mb": 3 * (design + weights) / 1e6}


# --------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--hidden", nargs="+", type=int, default=list(WIDTHS),
                        help="hidden width; the network has two hidden layers of it")
    parser.add_argument("--batch", nargs="+", choices=BATCHES, default=list(BATCHES))
    parser.add_argument("--dtype", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--peer", nargs="+", choices=sorted(PEERS), default=None,
                        help="default: sklearn, and torch when it is importable")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS (and PyTorch) threads for every contender (default 1: these "
                             "matrices are too small to gain from more, and a sweep runs trials "
                             "side by side)")
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: car_prices and digits, width 32, batch 32, "
                             "float64, 2 repeats")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory run")
    parser.add_argument("--no-breakdown", action="store_true",
                        help="skip timing the parts of our epoch")
    parser.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.hidden, args.batch = ["car_prices", "digits"], [32], ["32"]
        args.dtype = ["float64"]
        args.repeats, args.no_memory = min(args.repeats, 2), True
    if args.peer is None:
        args.peer = ["sklearn"] + (["torch"] if torch_available() else [])
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = sys.stderr if args.json else sys.stdout
    if "torch" in args.peer:
        import torch

        torch.set_num_threads(args.threads)
    rows, parts, memory = [], [], None
    with threadpool_limits(limits=args.threads, user_api="blas"):
        blas = ", ".join(sorted({f"{p['internal_api']} {p['version']}" for p in threadpool_info()
                                 if p["user_api"] == "blas"}))
        gflops = {dtype: gemm_gflops(dtype) for dtype in args.dtype}
        print(f"threads: {args.threads} (BLAS: {blas}); GEMM throughput: "
              + ", ".join(f"{d} {g:.0f} GFLOP/s" for d, g in gflops.items()), file=info)
        for dataset in args.dataset:
            for dtype in args.dtype:
                data = load(dataset, dtype)
                for hidden in args.hidden:
                    for batch in args.batch:
                        case = Case(dataset, hidden, batch, dtype)
                        ms = measure(data, case, args.peer, args.repeats,
                                     None if args.no_breakdown else epoch_parts(data, case))
                        flops = 6.0 * len(data.X_train) * n_weights(data.n_inputs, hidden,
                                                                     n_outputs(data))
                        limit_ms = 1000.0 * flops / (max(gflops[dtype], ms["gflops"]) * 1e9)
                        for peer in args.peer:
                            rows.append({"dataset": dataset, "hidden": hidden, "batch": batch,
                                         "dtype": dtype, "peer": peer, "ours_ms": ms["ours"],
                                         "peer_ms": ms[peer], "ratio": ms["ours"] / ms[peer],
                                         "limit_ms": limit_ms})
                        if not args.json:
                            print_rows(rows[-len(args.peer):], header=len(rows) == len(args.peer))
                        if not args.no_breakdown:
                            n_batches = math.ceil(len(data.X_train) / case.batch_size(len(data.X_train)))
                            parts.append({"case": case, "ours_ms": ms["ours"], "limit_ms": limit_ms,
                                          "batches": n_batches} | breakdown(ms["parts"]))
                if dataset == "diamonds" and dtype == "float32" and not args.no_memory:
                    memory = peak_training_memory(data, Case(dataset, 64, "256", dtype))
    if args.json:
        print(json.dumps(rows, indent=1))
    if memory:
        print(f"peak memory, diamonds 2x64 batch 256 float32, one epoch with evaluation: "
              f"{memory['peak_mb']:.2f} MB allocated by training; bound 3 x (X_train "
              f"{memory['design_mb']:.2f} MB + weights {memory['weights_mb']:.3f} MB) = "
              f"{memory['bound_mb']:.2f} MB", file=info)
    if parts:
        print_breakdown(parts, file=info)
    print_targets(rows, file=info)
    return 0


def print_rows(rows: list[dict], header: bool) -> None:
    if header:
        print(f"{'dataset':<11}{'hidden':>7}{'batch':>6}  {'dtype':<8}{'peer':<8}"
              f"{'ours ms':>9}{'peer ms':>9}{'ratio':>7}{'limit ms':>9}{'ours/limit':>11}")
    for r in rows:
        print(f"{r['dataset']:<11}{r['hidden']:>7}{r['batch']:>6}  {r['dtype']:<8}{r['peer']:<8}"
              f"{r['ours_ms']:>9.2f}{r['peer_ms']:>9.2f}{r['ratio']:>7.2f}{r['limit_ms']:>9.2f}"
              f"{r['ours_ms'] / r['limit_ms']:>10.1f}x", flush=True)


def print_breakdown(parts: list[dict], file) -> None:
    """Our ms/epoch as the GEMM-bound limit plus what the rest is made of (see ``breakdown``)."""
    print("\nwhere our epoch goes, ms/epoch: each part timed alone (medians); the gap to the limit "
          "= GEMMs above it + the rest", file=file)
    print(f"{'dataset':<11}{'hidden':>7}{'batch':>6}  {'dtype':<8}{'ours':>7}{'limit':>7}{'GEMM>lim':>9}"
          f"{'elemwise':>9}{'calls':>7}{'optim':>7}{'shuffle':>8}{'eval':>7}{'(GEMM)':>7}{'rest':>7}"
          f"{'calls/batch':>12}", file=file)
    for p in parts:
        c = p["case"]
        timed = p["gemm"] + p["elementwise"] + p["calls"] + p["optimizer"] + p["shuffle"] + p["evaluation"]
        print(f"{c.dataset:<11}{c.hidden:>7}{c.batch:>6}  {c.dtype:<8}{p['ours_ms']:>7.2f}{p['limit_ms']:>7.2f}"
              f"{p['gemm'] - p['limit_ms']:>9.2f}{p['elementwise']:>9.2f}{p['calls']:>7.2f}"
              f"{p['optimizer']:>7.2f}{p['shuffle']:>8.2f}{p['evaluation']:>7.2f}({p['eval_gemm']:>5.2f})"
              f"{p['ours_ms'] - timed:>7.2f}{1000.0 * p['calls'] / p['batches']:>9.1f} µs", file=file)
    print("GEMM>lim: the training matrix products at their batch shapes, beyond the limit; elemwise: "
          "bias, activation, f', loss; calls: Python and NumPy dispatch of loss_and_grad and the "
          "SGD step; optim: the SGD step's arithmetic; shuffle: the epoch's permuted copy of the rows; "
          "eval: the end-of-epoch forward passes and losses (its GEMMs in brackets); rest: the "
          "epoch loop, history and timing noise", file=file)


def print_targets(rows: list[dict], file) -> None:
    """Issue 17's three ratios on the headline case, PASS or MISS, when that case was measured."""
    measured = {(r["dtype"], r["peer"]): r["ratio"] for r in rows
                if (r["dataset"], r["hidden"], r["batch"]) == TARGET_CASE}
    if not measured:
        return
    dataset, hidden, batch = TARGET_CASE
    print(f"\ntargets, {dataset} 2x{hidden} batch {batch}, measured in this run:", file=file)
    for (dtype, peer), bound in TARGETS.items():
        ratio = measured.get((dtype, peer))
        verdict = "not measured" if ratio is None else f"{ratio:.2f} <= {bound:.2f}  " + (
            "PASS" if ratio <= bound else "MISS")
        print(f"  ours/{peer:<8}{dtype:<9}{verdict}", file=file)


if __name__ == "__main__":
    sys.exit(main())
