"""Stochastic gradient descent with momentum, plain or Nesterov.

The optimiser owns the velocities; the network owns the parameters and the schedule owns the
learning rate (the trainer sets ``learning_rate`` once per epoch).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class SGD:
    """SGD in velocity form, the update scikit-learn's ``MLPRegressor`` uses.

        v ← μ·v − η·∇
        W ← W + v               (plain momentum)
        W ← W + μ·v − η·∇       (Nesterov, with the new v)

    ``params`` are live arrays (e.g. ``Network.params()``) updated in place.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.params = list(params)
        self.learning_rate = float(learning_rate)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocities = [np.zeros_like(p) for p in self.params]

    def update_params(self, grads: Sequence[np.ndarray]) -> None:
        """Apply one step given gradients aligned with ``params``."""
        mu, lr = self.momentum, self.learning_rate
        for param, velocity, grad in zip(self.params, self.velocities, grads):
            if mu == 0.0:
                param -= lr * grad
                continue
            velocity *= mu
            velocity -= lr * grad
            if self.nesterov:
                param += mu * velocity - lr * grad
            else:
                param += velocity
