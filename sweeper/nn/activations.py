"""Activation functions and their derivatives.

Each activation maps pre-activations ``z`` (any shape) to ``a = f(z)`` and gives the
elementwise derivative ``f'(z)``; ``derivative`` receives both ``z`` and ``a`` because
sigmoid and tanh are cheapest written in terms of their output. Both take ``out=``, an array
shaped like ``z`` to write the result into (the training loop reuses one per layer); without
it they return a new array. ``Identity.forward`` returns ``z`` itself.

``ACTIVATIONS`` lists the hidden activations, ``OUTPUT_ACTIVATIONS`` the output ones. Softmax
is only an output: it mixes a row's units, so it has a Jacobian (``Softmax.jacobian``) but no
elementwise derivative, and the network never needs one (with cross-entropy the output error
is δᴸ = (p − y)/m, see ``losses``).
"""
from __future__ import annotations

import numpy as np

from ._checks import check_range


class Activation:
    """Base class: ``forward(z) -> a`` and ``derivative(z, a) -> f'(z)``."""

    name = "base"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    """f(z) = z, f'(z) = 1."""

    name = "identity"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return z

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return np.ones_like(z)
        out[...] = 1.0
        return out


class Sigmoid(Activation):
    """f(z) = 1/(1+e^(−z)) = ½(1 + tanh(z/2)), f'(z) = a(1−a).

    The tanh form never evaluates ``exp`` of a large argument, so |z| > 700 gives 0 or 1
    without an overflow warning.
    """

    name = "sigmoid"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        a = np.multiply(z, 0.5, out=out)
        np.tanh(a, out=a)
        a += 1.0
        a *= 0.5
        return a

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        d = np.subtract(1.0, a, out=out)
        d *= a
        return d


class Tanh(Activation):
    """f(z) = tanh(z), f'(z) = 1 − a²."""

    name = "tanh"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.tanh(z, out=out)

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        d = np.multiply(a, a, out=out)
        np.subtract(1.0, d, out=d)
        return d


class ReLU(Activation):
    """f(z) = max(z, 0), f'(z) = 1 if z > 0 else 0."""

    name = "relu"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return np.maximum(z, 0.0, out=out)

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty_like(z)
        return np.greater(z, 0, out=out)  # True/False written as 1.0/0.0 in z's dtype


class LeakyReLU(Activation):
    """f(z) = z if z > 0 else slope·z, f'(z) = 1 if z > 0 else slope."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        check_range("slope", slope, lambda v: 0 <= v < 1, "in [0, 1)")
        self.slope = float(slope)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # With 0 ≤ slope < 1, max(z, slope·z) is z for z > 0 and slope·z otherwise.
        a = np.multiply(z, self.slope, out=out)
        return np.maximum(z, a, out=a)

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # [z > 0] is 1 or 0, and with 0 ≤ slope < 1, max([z > 0], slope) is 1 or slope: two
        # passes in z's dtype, no temporary.
        if out is None:
            out = np.empty_like(z)
        d = np.greater(z, 0, out=out)
        return np.maximum(d, self.slope, out=d)

    def __repr__(self) -> str:
        return f"LeakyReLU(slope={self.slope})"


class ELU(Activation):
    """f(z) = z if z > 0 else α(e^z − 1), f'(z) = 1 if z > 0 else a + α."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        check_range("alpha", alpha, lambda v: v > 0, "> 0")
        self.alpha = float(alpha)

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # expm1 only of the non-positive part: large positive z would overflow for nothing.
        return _into(np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0.0))), out)

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return _into(np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype, copy=False), out)

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha})"


class Softmax(Activation):
    """sᵢ(z) = e^(zᵢ − max z) / Σⱼ e^(zⱼ − max z) along each row of z ``(m, K)``.

    Subtracting the row maximum changes nothing mathematically and keeps every exponent ≤ 0,
    so no row overflows. The row maximum and row sum are ``(m, 1)`` temporaries.
    """

    name = "softmax"

    def forward(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        s = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
        np.exp(s, out=s)
        s /= s.sum(axis=1, keepdims=True)
        return s

    def derivative(self, z: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError(
            "softmax has no elementwise derivative; use Softmax.jacobian, or loss cross_entropy, "
            "whose output error (p − y)/m needs none"
        )

    @staticmethod
    def jacobian(a: np.ndarray) -> np.ndarray:
        """∂sᵢ/∂zⱼ = sᵢ(δᵢⱼ − sⱼ) per row, ``(m, K, K)``, from the output a = s(z) ``(m, K)``."""
        return a[:, :, None] * (np.eye(a.shape[1], dtype=a.dtype) - a[:, None, :])


def _into(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """``result``, copied into ``out`` when one is given."""
    if out is None:
        return result
    out[...] = result
    return out


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU)
}

OUTPUT_ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Tanh, Sigmoid, Softmax)
}
