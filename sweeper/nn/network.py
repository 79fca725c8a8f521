"""A fully connected feed-forward network for regression, forward and backward in NumPy.

Notation (rows are samples, m = batch size, L = number of layers):

    a⁰ = X                                   (m, n_inputs)
    zˡ = aˡ⁻¹ Wˡ + bˡ                         Wˡ: (fan_in, fan_out), bˡ: (fan_out,)
    aˡ = f(zˡ) ⊙ maskˡ / (1 − p)             hidden layers; mask only while training
    ŷ  = g(zᴸ)                               output activation g

    J  = 1/(2m) Σ (ŷ − y)²  +  λ₁ Σ|W|  +  (λ₂/2) Σ W²     (penalties on weights, not biases)

Backward pass:

    δᴸ = (ŷ − y)/m ⊙ g'(zᴸ)
    δˡ = (δˡ⁺¹ Wˡ⁺¹ᵀ) ⊙ maskˡ/(1 − p) ⊙ f'(zˡ)
    ∂J/∂Wˡ = aˡ⁻¹ᵀ δˡ + λ₁ sign(Wˡ) + λ₂ Wˡ
    ∂J/∂bˡ = Σ_rows δˡ
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ._registry import lookup
from .activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, Activation
from .initializers import INITIALIZERS

DTYPES = ("float64", "float32")


class Network:
    """Feed-forward regression network.

    Parameters
    ----------
    sizes : layer widths ``[n_inputs, hidden..., n_outputs]``; two entries give a linear model.
    activation : hidden activation, one of ``ACTIVATIONS``.
    output_activation : one of ``identity``, ``tanh``, ``sigmoid``.
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
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(
                f"sizes must list at least an input and an output width, all >= 1; got {sizes}"
            )
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"unknown output_activation {output_activation!r}; "
                f"choose one of: {', '.join(OUTPUT_ACTIVATIONS)}"
            )
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        for name, value in (("l1", l1), ("l2", l2)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"max_norm must be null or > 0, got {max_norm}")

        self.sizes = sizes
        self.activation = _make_activation(activation, leaky_slope, elu_alpha)
        self.output_activation = lookup(ACTIVATIONS, output_activation, "output_activation")()
        self.dtype = np.dtype(dtype)
        self.l1, self.l2 = float(l1), float(l2)
        self.dropout = float(dropout)
        self.max_norm = None if max_norm is None else float(max_norm)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

        initializer = lookup(INITIALIZERS, init, "init")()
        self.weights: list[np.ndarray] = [
            initializer(fan_in, fan_out, self.rng).astype(self.dtype)
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:])
        ]
        self.biases: list[np.ndarray] = [np.zeros(fan_out, self.dtype) for fan_out in sizes[1:]]

    # ------------------------------------------------------------------ forward
    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.weights)

    def _layer_activation(self, i: int) -> Activation:
        return self.output_activation if i == self.n_layers - 1 else self.activation

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Predictions in evaluation mode (dropout off): ``(n_samples, n_outputs)``."""
        a = self._as_input(X)
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W
            z += b
            a = self._layer_activation(i).forward(z)
        return a

    predict = forward

    def _forward_train(self, X: np.ndarray) -> tuple[list, list, list, list]:
        """Training-mode forward pass keeping what backprop needs.

        Returns ``(inputs, zs, acts, masks)`` per layer l: ``inputs[l]`` is the (dropped-out)
        input of layer l, ``zs[l]`` its pre-activation, ``acts[l] = f(zs[l])`` before dropout,
        ``masks[l]`` the scaled dropout mask applied to ``acts[l]`` (None for the output layer
        or when dropout is off). ``inputs`` has one more entry: the last is ŷ.
        """
        keep = 1.0 - self.dropout
        inputs, zs, acts, masks = [self._as_input(X)], [], [], []
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = inputs[-1] @ W
            z += b
            a = self._layer_activation(i).forward(z)
            mask = None
            if self.dropout > 0.0 and i < self.n_layers - 1:
                # Inverted dropout: scale kept units by 1/(1-p) so E[a] is unchanged.
                mask = (self.rng.random(a.shape) < keep).astype(self.dtype)
                mask /= keep
            zs.append(z)
            acts.append(a)
            masks.append(mask)
            inputs.append(a if mask is None else a * mask)
        return inputs, zs, acts, masks

    # ------------------------------------------------------------------ loss
    def penalty(self) -> float:
        """λ₁ Σ|W| + (λ₂/2) Σ W² over every weight matrix (biases are not penalised)."""
        total = 0.0
        if self.l1:
            total += self.l1 * sum(float(np.abs(W).sum()) for W in self.weights)
        if self.l2:
            total += 0.5 * self.l2 * sum(float(np.vdot(W, W)) for W in self.weights)
        return total

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        """J = 1/(2m) Σ(ŷ − y)² + penalties, in evaluation mode (dropout off)."""
        residual = self.forward(X) - self._as_target(y)
        return 0.5 * float(np.vdot(residual, residual)) / len(residual) + self.penalty()

    def loss_and_grad(
        self, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """Training-mode loss J and its gradients.

        X: ``(m, n_inputs)``, y: ``(m, n_outputs)`` or ``(m,)`` for one output.
        Returns ``(J, dW, db)`` with ``dW[l]`` shaped like ``weights[l]`` and ``db[l]`` like
        ``biases[l]``. Dropout masks are drawn from the network's generator.
        """
        inputs, zs, acts, masks = self._forward_train(X)
        y_hat = inputs[-1]
        m = y_hat.shape[0]
        residual = y_hat - self._as_target(y)
        loss = 0.5 * float(np.vdot(residual, residual)) / m + self.penalty()

        dW: list[np.ndarray] = [None] * self.n_layers  # type: ignore[list-item]
        db: list[np.ndarray] = [None] * self.n_layers  # type: ignore[list-item]
        delta = residual
        delta /= m
        for i in range(self.n_layers - 1, -1, -1):
            if i < self.n_layers - 1:
                delta = delta @ self.weights[i + 1].T
                if masks[i] is not None:
                    delta *= masks[i]
            act = self._layer_activation(i)
            if act.name != "identity":
                delta *= act.derivative(zs[i], acts[i])
            dW[i] = inputs[i].T @ delta
            db[i] = delta.sum(axis=0)
            if self.l1:
                dW[i] += self.l1 * np.sign(self.weights[i])
            if self.l2:
                dW[i] += self.l2 * self.weights[i]
        return loss, dW, db

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
            f"output_activation={self.output_activation.name!r}, dtype={self.dtype.name!r})"
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


def _make_activation(name: str, leaky_slope: float, elu_alpha: float) -> Activation:
    cls = lookup(ACTIVATIONS, name, "activation")
    if name == "leaky_relu":
        return cls(leaky_slope)
    if name == "elu":
        return cls(elu_alpha)
    return cls()
