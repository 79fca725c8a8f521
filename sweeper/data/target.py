"""Target scalings: each is an affine map y' = (y − shift) / scale fitted on training targets."""

from __future__ import annotations

from typing import Callable

import numpy as np

from sweeper.errors import ConfigError


def _standard(y: np.ndarray) -> tuple[float, float]:
    """shift = mean(y), scale = sqrt(mean((y − mean)²)); 1 for a constant target."""
    spread = float(y.std())
    return float(y.mean()), spread if y.min() != y.max() else 1.0


def _minmax(y: np.ndarray) -> tuple[float, float]:
    """shift = min(y), scale = max(y) − min(y), so training targets land in [0, 1]."""
    low, high = float(y.min()), float(y.max())
    return low, (high - low) if high != low else 1.0


def _none(y: np.ndarray) -> tuple[float, float]:
    """The identity: y' = y."""
    return 0.0, 1.0


TARGET_SCALINGS: dict[str, Callable[[np.ndarray], tuple[float, float]]] = {
    "standard": _standard,
    "minmax": _minmax,
    "none": _none,
}


def fit_target_scaling(name: str, y: np.ndarray) -> tuple[float, float]:
    """(shift, scale) of scaling `name` fitted on training targets `y` of shape (n,)."""
    if name not in TARGET_SCALINGS:
        raise ConfigError(
            f"data.target_scaling: unknown value {name!r}; allowed: {', '.join(TARGET_SCALINGS)}"
        )
    return TARGET_SCALINGS[name](np.asarray(y, dtype=np.float64))
