"""Activation functions and their derivatives.

Each activation maps pre-activations ``z`` (any shape) to ``a = f(z)`` and gives the
elementwise derivative ``f'(z)``; ``derivative`` receives both ``z`` and ``a`` because
sigmoid and tanh are cheapest written in terms of their output.
"""
from __future__ import annotations

import numpy as np


class Activation:
    """Base class: ``forward(z) -> a`` and ``derivative(z, a) -> f'(z)``."""

    name = "base"

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    """f(z) = z, f'(z) = 1."""

    name = "identity"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.ones_like(z)


class Sigmoid(Activation):
    """f(z) = 1/(1+e^(−z)) = ½(1 + tanh(z/2)), f'(z) = a(1−a).

    The tanh form never evaluates ``exp`` of a large argument, so |z| > 700 gives 0 or 1
    without an overflow warning.
    """

    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        a = np.tanh(z * 0.5)
        a += 1.0
        a *= 0.5
        return a

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return a * (1.0 - a)


class Tanh(Activation):
    """f(z) = tanh(z), f'(z) = 1 − a²."""

    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return 1.0 - a * a


class ReLU(Activation):
    """f(z) = max(z, 0), f'(z) = 1 if z > 0 else 0."""

    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0.0)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return (z > 0).astype(z.dtype)


class LeakyReLU(Activation):
    """f(z) = z if z > 0 else slope·z, f'(z) = 1 if z > 0 else slope."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"leaky_relu slope must be in [0, 1), got {slope}")
        self.slope = float(slope)

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.where(z > 0, z, z * self.slope)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype, copy=False)

    def __repr__(self) -> str:
        return f"LeakyReLU(slope={self.slope})"


class ELU(Activation):
    """f(z) = z if z > 0 else α(e^z − 1), f'(z) = 1 if z > 0 else a + α."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        if alpha <= 0:
            raise ValueError(f"elu alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, z: np.ndarray) -> np.ndarray:
        # expm1 only of the non-positive part: large positive z would overflow for nothing.
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0.0)))

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(z > 0, 1.0, a + self.alpha).astype(z.dtype, copy=False)

    def __repr__(self) -> str:
        return f"ELU(alpha={self.alpha})"


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU)
}

OUTPUT_ACTIVATIONS = ("identity", "tanh", "sigmoid")
