"""Data losses: what the network minimises before penalties, and the output error δᴸ that
starts backpropagation.

Rows are samples, m = batch size, K = number of outputs, zᴸ the output pre-activation and
ŷ = g(zᴸ) the output (p when it is a probability):

    squared_error   J = 1/(2m) Σᵢ Σₖ (ŷᵢₖ − yᵢₖ)²                       δᴸ = (ŷ − y)/m ⊙ g'(zᴸ)
    cross_entropy   K ≥ 2, g = softmax, y one-hot rows (m, K):
                    J = −(1/m) Σᵢ Σₖ yᵢₖ log pᵢₖ                       δᴸ = (p − y)/m
                    K = 1, g = sigmoid, y ∈ {0, 1}, (m,) or (m, 1):
                    J = −(1/m) Σᵢ [yᵢ log pᵢ + (1 − yᵢ) log(1 − pᵢ)]   δᴸ = (p − y)/m

Softmax and sigmoid are the canonical links of these cross-entropies: ∂J/∂p times the Jacobian
of g is exactly (p − y)/m, so the training path never forms the Jacobian (scikit-learn's MLP
fuses it the same way).

J is evaluated two ways, for two purposes:

- ``output_delta`` (training, ``loss_and_grad``) works from zᴸ: log p = −softplus(−z) and
  log(1 − p) = −softplus(z) for sigmoid, log pₖ = zₖ − logsumexp(z) for softmax. A saturated
  output (p = 0 or 1 in floating point) still gives a finite J, and δᴸ is its exact
  gradient (what ``gradient_check`` verifies).
- ``__call__`` (reporting, ``Network.data_loss``) works from predictions already computed, in
  float64, clipping p to [ε, 1 − ε] with ε = float64 machine epsilon as scikit-learn's
  ``log_loss`` does, so a confident wrong answer costs a large but finite −log ε ≈ 36.
"""
from __future__ import annotations

import numpy as np

from .activations import Activation

EPS = float(np.finfo(np.float64).eps)


class Loss:
    """Base class: ``__call__(y_pred, y) -> J`` for reporting, ``output_delta`` for training."""

    name = "base"

    def output_activations(self, n_outputs: int) -> tuple[str, ...]:
        """The output activations this loss works with, for ``n_outputs`` outputs."""
        raise NotImplementedError

    def check(self, output_activation: str, n_outputs: int) -> None:
        """Raise ValueError unless this loss works with ``output_activation`` and ``n_outputs``."""
        allowed = self.output_activations(n_outputs)
        if output_activation not in allowed:
            outputs = "1 output" if n_outputs == 1 else f"{n_outputs} outputs"
            choices = allowed[-1] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
            raise ValueError(
                f"loss {self.name!r} with {outputs} needs output_activation {choices}, "
                f"got {output_activation!r}"
            )

    def __call__(self, y_pred: np.ndarray, y: np.ndarray) -> float:
        """J without penalties for predictions ``y_pred`` and targets ``y``, both ``(m, K)``."""
        raise NotImplementedError

    def output_delta(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation, out: np.ndarray
    ) -> float:
        """Training J (no penalties) of the output layer, with δᴸ written into ``out``.

        z: ``(m, K)`` pre-activations, overwritten (nothing reads them afterwards);
        a = g(z): ``(m, K)``; y: ``(m, K)``; ``activation`` is g.
        """
        raise NotImplementedError


class SquaredError(Loss):
    """J = 1/(2m) Σᵢ Σₖ (ŷᵢₖ − yᵢₖ)², δᴸ = (ŷ − y)/m ⊙ g'(zᴸ)."""

    name = "squared_error"

    def output_activations(self, n_outputs: int) -> tuple[str, ...]:
        return ("identity", "tanh", "sigmoid")

    def __call__(self, y_pred: np.ndarray, y: np.ndarray) -> float:
        diff = np.asarray(y_pred).astype(np.float64, copy=False) - y
        return 0.5 * float(np.vdot(diff, diff)) / len(diff)

    def output_delta(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation, out: np.ndarray
    ) -> float:
        residual = np.subtract(a, y, out=out)
        loss = 0.5 * float(np.vdot(residual, residual)) / len(residual)
        residual /= len(residual)
        if activation.name != "identity":
            residual *= activation.derivative(z, a, out=z)
        return loss


class CrossEntropy(Loss):
    """Softmax cross-entropy for K ≥ 2 outputs, binary cross-entropy of a sigmoid for 1;
    δᴸ = (p − y)/m for both (formulas in the module docstring)."""

    name = "cross_entropy"

    def output_activations(self, n_outputs: int) -> tuple[str, ...]:
        return ("sigmoid",) if n_outputs == 1 else ("softmax",)

    def __call__(self, y_pred: np.ndarray, y: np.ndarray) -> float:
        p = np.clip(np.asarray(y_pred, np.float64), EPS, 1.0 - EPS)
        if p.shape[1] == 1:
            return -(float(np.vdot(y, np.log(p))) + float(np.vdot(1.0 - y, np.log1p(-p)))) / len(p)
        return -float(np.vdot(y, np.log(p))) / len(p)

    def output_delta(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation, out: np.ndarray
    ) -> float:
        delta = np.subtract(a, y, out=out)
        delta /= len(delta)
        return _binary_from_logits(z, y) if z.shape[1] == 1 else _softmax_from_logits(z, y)


def _binary_from_logits(z: np.ndarray, y: np.ndarray) -> float:
    """−(1/m) Σ [y log σ(z) + (1 − y) log(1 − σ(z))] = (1/m) Σ [softplus(z) − y·z],
    softplus(z) = log(1 + eᶻ) (``logaddexp(0, z)``, no overflow); z ``(m, 1)`` is overwritten."""
    y_dot_z = float(np.vdot(y, z))
    return (float(np.logaddexp(0.0, z, out=z).sum()) - y_dot_z) / len(z)


def _softmax_from_logits(z: np.ndarray, y: np.ndarray) -> float:
    """−(1/m) Σᵢ Σₖ yᵢₖ log pᵢₖ with log pᵢₖ = (zᵢₖ − maxᵢ) − log Σⱼ e^(zᵢⱼ − maxᵢ), maxᵢ the
    row maximum (every exponent ≤ 0, no overflow); z ``(m, K)`` is overwritten."""
    np.subtract(z, z.max(axis=1, keepdims=True), out=z)
    y_dot_shifted = float(np.vdot(y, z))
    log_sums = np.log(np.exp(z, out=z).sum(axis=1))
    return (float(np.dot(y.sum(axis=1), log_sums)) - y_dot_shifted) / len(z)


LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (SquaredError, CrossEntropy)}


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Class probabilities (n, K), float64, of a cross-entropy network's outputs: softmax rows
    (n, K) as they are, one sigmoid output p (n, 1) as the columns [1 − p, p]. Their argmax is
    the predicted class (for one sigmoid output: class 1 when p > ½)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return np.column_stack([1.0 - outputs[:, 0], outputs[:, 0]]) if outputs.shape[1] == 1 else outputs
