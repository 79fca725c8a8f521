"""Weight initialisers: each draws a ``(fan_in, fan_out)`` matrix from a seeded Generator.

Weights are always drawn in float64 and then cast, so a float32 and a float64 network built
from the same seed start from the same weights (up to rounding).
"""
from __future__ import annotations

import math

import numpy as np


class Initializer:
    """Base class: ``__call__(fan_in, fan_out, rng) -> (fan_in, fan_out)`` float64 array."""

    name = "base"

    def std(self, fan_in: int, fan_out: int) -> float:
        raise NotImplementedError

    def __call__(self, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((fan_in, fan_out)) * self.std(fan_in, fan_out)


class He(Initializer):
    """Normal with variance 2/fan_in (suits ReLU)."""

    name = "he"

    def std(self, fan_in: int, fan_out: int) -> float:
        return math.sqrt(2.0 / fan_in)


class Xavier(Initializer):
    """Normal with variance 2/(fan_in + fan_out) (Glorot; suits tanh and sigmoid)."""

    name = "xavier"

    def std(self, fan_in: int, fan_out: int) -> float:
        return math.sqrt(2.0 / (fan_in + fan_out))


class LeCun(Initializer):
    """Normal with variance 1/fan_in (suits ELU and SELU-like units)."""

    name = "lecun"

    def std(self, fan_in: int, fan_out: int) -> float:
        return math.sqrt(1.0 / fan_in)


class Normal(Initializer):
    """Normal with σ = 0.01, whatever the layer's size."""

    name = "normal"

    def std(self, fan_in: int, fan_out: int) -> float:
        return 0.01


INITIALIZERS: dict[str, type[Initializer]] = {
    cls.name: cls for cls in (He, Xavier, LeCun, Normal)
}
