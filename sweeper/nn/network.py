"""A fully connected feed-forward network for regression and classification, forward and
backward in NumPy.

Notation (rows are samples, m = batch size, L = number of layers, K = number of outputs):

    a⁰ = X                                   (m, n_inputs)
    zˡ = aˡ⁻¹ Wˡ + bˡ                         Wˡ: (fan_in, fan_out), bˡ: (fan_out,)
    aˡ = f(zˡ) ⊙ maskˡ / (1 − p)             hidden layers; mask only while training
    ŷ  = g(zᴸ)                               output activation g

    J  = J_data(ŷ, y)  +  λ₁ Σ|W|  +  (λ₂/2) Σ W²     (penalties on weights, not biases)

The data loss J_data and the output error δᴸ it starts backprop with (details in ``losses``):

    loss="squared_error"  J_data = 1/(2m) Σ (ŷ − y)²                   δᴸ = (ŷ − y)/m ⊙ g'(zᴸ)
        g = identity, tanh or sigmoid; y: (m, K) or (m,) for one output
    loss="cross_entropy"  J_data = −(1/m) Σ y log p                    δᴸ = (p − y)/m
        K ≥ 2: g = softmax, y one-hot rows (m, K)
        K = 1: g = sigmoid, y ∈ {0, 1} (m,) or (m, 1), and J_data is the binary cross-entropy
               −(1/m) Σ [y log p + (1 − y) log(1 − p)]

Two classes use one sigmoid output with binary cross-entropy, not a 2-way softmax: it is the
same model (softmax(z₀, z₁)₁ = σ(z₁ − z₀)) with half the output weights, and it is what
scikit-learn's MLPClassifier does for binary problems, so its updates can be matched exactly.
(A 2-way softmax with one-hot targets is accepted too.)

Backward pass, from δᴸ above:

    δˡ = (δˡ⁺¹ Wˡ⁺¹ᵀ) ⊙ maskˡ/(1 − p) ⊙ f'(zˡ)
    ∂J/∂Wˡ = aˡ⁻¹ᵀ δˡ + λ₁ sign(Wˡ) + λ₂ Wˡ
    ∂J/∂bˡ = Σ_rows δˡ

Speed: a training loop passes a ``Workspace`` (``net.workspace(batch_size)``) so every batch
writes into the same preallocated arrays (``out=`` everywhere, no per-batch allocation of
anything batch-by-width; a softmax output adds a few per-row ``(m,)`` reductions), and the
weights and biases are views of one flat array so the optimiser updates them in one go.
Every matrix product is an ``np.dot`` call: the same BLAS call as ``np.matmul`` (the same
numbers), with less NumPy dispatch around it, and a direct one for a product with an inner
dimension of 1 (δ of a one-unit output layer times Wᵀ), which ``np.matmul`` computes by a
slower path.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ._checks import RangeError, check_range
from ._registry import lookup
from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation
from .initializers import INITIALIZERS
from .losses import LOSSES

DTYPES = ("float64", "float32")
FORWARD_CHUNK = 2048  # rows per chunk when forward() is given no workspace


class Network:
    """Feed-forward network for regression (squared error) or classification (cross-entropy).

    Parameters
    ----------
    sizes : layer widths ``[n_inputs, hidden..., n_outputs]``; two entries give a linear model.
    activation : hidden activation, one of ``ACTIVATIONS``.
    output_activation : one of ``OUTPUT_ACTIVATIONS`` (``identity``, ``tanh``, ``sigmoid``,
        ``softmax``) that ``loss`` works with.
    loss : one of ``LOSSES``: ``squared_error`` with an identity, tanh or sigmoid output;
        ``cross_entropy`` with a softmax output (K ≥ 2 classes, one-hot targets) or a single
        sigmoid output (two classes, 0/1 targets).
    init : weight initialiser, one of ``INITIALIZERS``; biases start at zero.
    seed : int or ``numpy.random.Generator``; initial weights and every dropout mask come
        from this one generator, so the same seed gives bit-identical weights and masks.
    dtype : ``float64`` or ``float32``; weights, activations and gradients all stay in it.
    l1, l2 : penalty strengths λ₁, λ₂ ≥ 0 on weights.
    dropout : probability p ∈ [0, 1) of zeroing a hidden unit while training (inverted).
    max_norm : None or c > 0; ``apply_max_norm`` rescales each unit's incoming weights.
    leaky_slope, elu_alpha : parameters of ``leaky_relu`` and ``elu``.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "relu",
        output_activation: str = "identity",
        loss: str = "squared_error",
        init: str = "he",
        seed: int | np.random.Generator = 0,
        dtype: str = "float64",
        l1: float = 0.0,
        l2: float = 0.0,
        dropout: float = 0.0,
        max_norm: float | None = None,
        leaky_slope: float = 0.01,
        elu_alpha: float = 1.0,
    ) -> None:
        sizes = [int(s) for s in sizes]
        self.check_arguments(sizes, l1=l1, l2=l2, dropout=dropout, max_norm=max_norm)
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"unknown output_activation {output_activation!r}; "
                f"choose one of: {', '.join(OUTPUT_ACTIVATIONS)}"
            )
        self.loss_function = lookup(LOSSES, loss, "loss")()
        self.loss_function.check(output_activation, sizes[-1])
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")

        self.sizes = sizes
        self.activation = _make_activation(activation, leaky_slope, elu_alpha)
        self.output_activation = OUTPUT_ACTIVATIONS[output_activation]()
        self.dtype = np.dtype(dtype)
        self.l1, self.l2 = float(l1), float(l2)
        self.dropout = float(dropout)
        self.max_norm = None if max_norm is None else float(max_norm)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        initializer = lookup(INITIALIZERS, init, "init")()
        # One flat array holds every parameter, weights then biases (the order of params()).
        self.weights, self.biases = _flat_layers(sizes, self.dtype)
        for W, (fan_in, fan_out) in zip(self.weights, zip(sizes[:-1], sizes[1:])):
            W[...] = initializer(fan_in, fan_out, self.rng)
        for b in self.biases:
            b[...] = 0.0

    @staticmethod
    def check_arguments(
        sizes: Sequence[int], l1: float = 0.0, l2: float = 0.0, dropout: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        """RangeError naming the first of these arguments out of its range (``sizes[i]`` for a
        width below 1). ``__init__`` calls it before allocating anything; settings can be
        checked with it without building a network (``sweeper.config.validate`` does)."""
        message = f"sizes must list at least an input and an output width, all >= 1; got {list(sizes)}"
        if len(sizes) < 2:
            raise RangeError("sizes", sizes, "at least 2 widths", message=message)
        for i, width in enumerate(sizes):
            if not width >= 1:
                raise RangeError(f"sizes[{i}]", width, ">= 1", message=message)
        check_range("l1", l1, lambda v: v >= 0, ">= 0")
        check_range("l2", l2, lambda v: v >= 0, ">= 0")
        check_range("dropout", dropout, lambda v: 0 <= v < 1, "in [0, 1)")
        check_range("max_norm", max_norm, lambda v: v > 0, "> 0", none_ok=True)

    # ------------------------------------------------------------------ forward
    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.weights)

    def _layer_activation(self, i: int) -> Activation:
        return self.output_activation if i == self.n_layers - 1 else self.activation

    def forward(self, X: np.ndarray, workspace: Workspace | None = None) -> np.ndarray:
        """Predictions in evaluation mode (dropout off): ``(n_samples, n_outputs)``.

        With a ``workspace`` the rows go through in chunks of ``workspace.rows`` using its
        buffers, so memory stays small however many rows X has.
        """
        X = self._as_input(X)
        y_hat = np.empty((len(X), self.sizes[-1]), self.dtype)
        for start, acts in self._forward_chunks(X, workspace):
            y_hat[start : start + len(acts[-1])] = acts[-1]
        return y_hat

    def dead_units(self, X: np.ndarray, workspace: Workspace | None = None) -> list[int]:
        """How many units of each hidden layer are dead on the rows of X, one count per hidden
        layer (evaluation mode): unit j of layer l is dead when aˡⱼ takes one value on every
        row, max_rows aˡⱼ = min_rows aˡⱼ (a ReLU unit whose input zˡⱼ ≤ 0 on every row). A
        layer whose units are all dead passes nothing of the row on: ŷ is the same for every row.
        """
        X = self._as_input(X)
        low = [np.full(width, np.inf) for width in self.sizes[1:-1]]
        high = [np.full(width, -np.inf) for width in self.sizes[1:-1]]
        for _, acts in self._forward_chunks(X, workspace):
            for a, lo, hi in zip(acts, low, high):
                np.minimum(lo, a.min(axis=0), out=lo)
                np.maximum(hi, a.max(axis=0), out=hi)
        return [int(np.count_nonzero(lo == hi)) for lo, hi in zip(low, high)]

    def _forward_chunks(
        self, X: np.ndarray, workspace: Workspace | None
    ) -> Iterator[tuple[int, list[np.ndarray]]]:
        """``(start, [a¹, ..., aᴸ])`` for each chunk of ``workspace.rows`` rows of X from row
        ``start``, in evaluation mode: every layer's activations, aᴸ = ŷ, in the workspace's
        buffers (overwritten by the next chunk)."""
        if workspace is None:
            workspace = Workspace(self, min(len(X), FORWARD_CHUNK), training=False)
        for start in range(0, len(X), workspace.rows):
            ws = workspace.for_rows(min(workspace.rows, len(X) - start))
            acts = [X[start : start + ws.rows]]
            for i, (W, b) in enumerate(zip(self.weights, self.biases)):
                z = np.dot(acts[-1], W, out=ws.z[i])
                z += b
                acts.append(self._layer_activation(i).forward(z, out=ws.a[i]))
            yield start, acts[1:]


    def workspace(self, rows: int, training: bool = True) -> Workspace:
        """Buffers for batches of up to ``rows`` samples, to reuse across calls (see Workspace);
        ``training=False`` for one that only ``forward`` uses."""
        return Workspace(self, rows, training)

    def _forward_train(self, X: np.ndarray, ws: Workspace | None = None) -> tuple[list, list, list, list]:
        """Training-mode forward pass keeping what backprop needs, written into ``ws``.

        Returns ``(inputs, zs, acts, masks)`` per layer l: ``inputs[l]`` is the (dropped-out)
        input of layer l, ``zs[l]`` its pre-activation, ``acts[l] = f(zs[l])`` before dropout,
        ``masks[l]`` the scaled dropout mask applied to ``acts[l]`` (None for the output layer
        or when dropout is off). ``inputs`` has one more entry: the last is ŷ.
        """
        ws = (ws or Workspace(self, len(X))).for_rows(len(X))
        keep = 1.0 - self.dropout
        inputs, acts, masks = [X], [], []
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = np.dot(inputs[-1], W, out=ws.z[i])
            z += b
            a = self._layer_activation(i).forward(z, out=ws.a[i])
            mask = None
            if self.dropout > 0.0 and i < self.n_layers - 1:
                # Inverted dropout: scale kept units by 1/(1-p) so E[a] is unchanged.
                self.rng.random(out=ws.uniform[i])
                mask = np.less(ws.uniform[i], keep, out=ws.mask[i])
                mask /= keep
            acts.append(a)
            masks.append(mask)
            inputs.append(a if mask is None else np.multiply(a, mask, out=ws.dropped[i]))
        return inputs, ws.z, acts, masks

    # ------------------------------------------------------------------ loss
    def penalty(self) -> float:
        """λ₁ Σ|W| + (λ₂/2) Σ W² over every weight matrix (biases are not penalised)."""
        total = 0.0
        if self.l1:
            total += self.l1 * sum(float(np.abs(W).sum()) for W in self.weights)
        if self.l2:
            total += 0.5 * self.l2 * sum(float(np.vdot(W, W)) for W in self.weights)
        return total

    def data_loss(self, y_pred: np.ndarray, y: np.ndarray) -> float:
        """J_data without penalties, in float64, for predictions ``y_pred`` ``(m, K)`` that
        ``forward`` computed and targets ``y`` ``(m, K)`` (or ``(m,)`` for one output).

        squared_error: 1/(2m) Σ (ŷ − y)² (summed over outputs, averaged over rows);
        cross_entropy: −(1/m) Σ y log p (binary: −(1/m) Σ [y log p + (1 − y) log(1 − p)]) with
        p clipped to [ε, 1 − ε], ε = float64 machine epsilon, as scikit-learn's log_loss.
        """
        y = np.asarray(y)
        if y.ndim == 1:
            y = y.reshape(-1, self.sizes[-1])
        if np.shape(y_pred) != y.shape:
            raise ValueError(f"y_pred has shape {np.shape(y_pred)} but y has shape {y.shape}")
        return self.loss_function(y_pred, y)

    def loss_and_grad(
        self, X: np.ndarray, y: np.ndarray, workspace: Workspace | None = None
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Training-mode loss J and its gradients.

        X: ``(m, n_inputs)``, y: ``(m, n_outputs)`` or ``(m,)`` for one output. With
        cross-entropy J is computed from the output pre-activation (see ``losses``), so a
        saturated sigmoid or softmax still gives a finite J. Returns ``(J, dW, db)`` with
        ``dW[l]`` shaped like ``weights[l]`` and ``db[l]`` like ``biases[l]``. Dropout masks
        are drawn from the network's generator. Without a ``workspace`` the gradients are new
        arrays; with one they are the workspace's arrays, overwritten by the next call.
        """
        X, y = self._as_input(X), self._as_target(y)
        ws = (workspace or Workspace(self, len(X))).for_rows(len(X))
        inputs, zs, acts, masks = self._forward_train(X, ws)
        last = self.n_layers - 1
        loss = self.loss_function.output_delta(
            zs[last], acts[last], y, self.output_activation, out=ws.delta[last]
        ) + self.penalty()

        delta = ws.delta[last]
        for i in range(last, -1, -1):
            if i < last:
                delta = np.dot(delta, self.weights[i + 1].T, out=ws.delta[i])
                if masks[i] is not None:
                    delta *= masks[i]
                if self.activation.name != "identity":
                    # f'(zˡ) is written over zˡ: nothing after this line reads zˡ.
                    delta *= self.activation.derivative(zs[i], acts[i], out=zs[i])
            np.dot(inputs[i].T, delta, out=ws.dW[i])
            # Σ_rows δ as 1ᵀδ: one BLAS call, where a reduction adds m rows one at a time.
            np.dot(ws.ones, delta, out=ws.db[i])
            self._add_penalty_gradient(i, ws)
        return loss, ws.dW, ws.db

    def _add_penalty_gradient(self, i: int, ws: Workspace) -> None:
        """``dW[i] += λ₁ sign(Wⁱ)``, then ``+= λ₂ Wⁱ``, each term formed in ``ws.penalty[i]``."""
        W, dW, term = self.weights[i], ws.dW[i], ws.penalty[i]
        if self.l1:
            np.sign(W, out=term)
            term *= self.l1
            dW += term
        if self.l2:
            np.multiply(W, self.l2, out=term)
            dW += term

    # ------------------------------------------------------------------ constraints, state
    def apply_max_norm(self) -> None:
        """Rescale, in place, each unit's incoming weight vector (a column of W) to norm ≤ c."""
        if self.max_norm is None:
            return
        for W in self.weights:
            norms = np.sqrt(np.einsum("ij,ij->j", W, W))
            too_big = norms > self.max_norm
            if too_big.any():
                W[:, too_big] *= self.max_norm / norms[too_big]

    def params(self) -> list[np.ndarray]:
        """The trainable arrays, weights then biases, as live references (optimisers update them)."""
        return [*self.weights, *self.biases]

    def get_params(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Copies of ``(weights, biases)``."""
        return [W.copy() for W in self.weights], [b.copy() for b in self.biases]

    def set_params(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> None:
        """Copy ``weights`` and ``biases`` into the network's arrays in place (shapes must match)."""
        for dst, src in zip(self.weights + self.biases, list(weights) + list(biases)):
            if dst.shape != np.shape(src):
                raise ValueError(f"parameter shape {np.shape(src)} does not match {dst.shape}")
            dst[...] = src

    def __repr__(self) -> str:
        return (
            f"Network(sizes={self.sizes}, activation={self.activation!r}, "
            f"output_activation={self.output_activation.name!r}, loss={self.loss_function.name!r}, "
            f"dtype={self.dtype.name!r})"
        )

    # ------------------------------------------------------------------ helpers
    def _as_input(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (n_samples, {self.sizes[0]}), got {X.shape}")
        return X

    def _as_target(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=self.dtype)
        return y.reshape(-1, self.sizes[-1]) if y.ndim == 1 else y


class Workspace:
    """Preallocated arrays for one network and batches of up to ``rows`` samples.

    Per layer l (width nˡ): ``z[l]``, ``a[l]``, ``delta[l]`` of shape ``(rows, nˡ)``; with
    dropout also ``uniform[l]`` (float64 draws), ``mask[l]`` and ``dropped[l]``; ``dW``, ``db``
    the gradients, views of one flat array in the order of ``Network.params()``; ``penalty[l]``,
    shaped like ``dW[l]``, where an L1 or L2 gradient term is formed; ``ones`` ``(rows,)`` for
    Σ_rows δ = 1ᵀδ. ``for_rows(m)`` gives the same memory cut to m rows (the last, shorter batch
    of an epoch). ``training=False`` keeps only what ``forward`` needs (``z``, ``a``).
    """

    def __init__(self, net: Network, rows: int, training: bool = True) -> None:
        dtype, widths = net.dtype, net.sizes[1:]
        self.rows = int(rows)

        def per_layer(dt=dtype, hidden_only=False):
            return [np.empty((self.rows, w), dt) if not hidden_only or i < len(widths) - 1 else None
                    for i, w in enumerate(widths)]

        self.z, self.a = per_layer(), per_layer()
        none = [None] * len(widths)
        self.delta = self.uniform = self.mask = self.dropped = none
        self.dW = self.db = self.penalty = self.ones = None
        if training:
            self.delta = per_layer()
            if net.dropout > 0.0:
                self.uniform = per_layer(np.float64, hidden_only=True)
                self.mask = per_layer(dtype, hidden_only=True)
                self.dropped = per_layer(dtype, hidden_only=True)
            self.dW, self.db = _flat_layers(net.sizes, dtype)
            self.penalty = [np.empty_like(dW) for dW in self.dW]
            self.ones = np.ones(self.rows, dtype)
        self._cut: dict[int, Workspace] = {}

    def for_rows(self, m: int) -> Workspace:
        """This workspace with every per-row array cut to its first m rows (m ≤ rows)."""
        if m == self.rows:
            return self
        if m not in self._cut:
            if m > self.rows:
                raise ValueError(f"a workspace for {self.rows} rows cannot hold {m}")
            cut = object.__new__(Workspace)
            cut.__dict__.update(self.__dict__, rows=m, _cut={})
            cut.ones = None if self.ones is None else self.ones[:m]
            for name in ("z", "a", "delta", "uniform", "mask", "dropped"):
                setattr(cut, name, [None if v is None else v[:m] for v in getattr(self, name)])
            self._cut[m] = cut
        return self._cut[m]


def _flat_layers(sizes: Sequence[int], dtype: np.dtype) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-layer ``(fan_in, fan_out)`` matrices and ``(fan_out,)`` vectors, all views of one flat
    array laid out weights first, then biases (the order of ``Network.params()``)."""
    shapes = [(i, o) for i, o in zip(sizes[:-1], sizes[1:])] + [(o,) for o in sizes[1:]]
    flat = np.empty(sum(int(np.prod(s)) for s in shapes), dtype)
    views, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(flat[start : start + size].reshape(shape))
        start += size
    n = len(sizes) - 1
    return views[:n], views[n:]


def _make_activation(name: str, leaky_slope: float, elu_alpha: float) -> Activation:
    cls = lookup(ACTIVATIONS, name, "activation")
    if name == "leaky_relu":
        return cls(leaky_slope)
    if name == "elu":
        return cls(elu_alpha)
    return cls()
