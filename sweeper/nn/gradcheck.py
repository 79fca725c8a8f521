"""Numerical check of ``Network.loss_and_grad`` by centred finite differences."""
from __future__ import annotations

import numpy as np

from .network import Network


def gradient_check(net: Network, X: np.ndarray, y: np.ndarray, h: float = 1e-4) -> float:
    """Relative error ‖g − g_num‖ / ‖g + g_num‖ over every weight and bias.

    g is the analytic gradient of ``loss_and_grad``; g_num perturbs each parameter θ by ±h:
    (J(θ + h) − J(θ − h)) / 2h. The dropout generator is rewound before every evaluation, so
    all evaluations see the same masks. The network is left as it was (parameters and
    generator state).
    """
    rng_state = net.rng.bit_generator.state

    def loss() -> float:
        net.rng.bit_generator.state = rng_state
        return net.loss_and_grad(X, y)[0]

    _, dW, db = net.loss_and_grad(X, y)
    analytic, numeric = [], []
    for param, grad in zip(net.params(), [*dW, *db]):
        flat = param.reshape(-1)
        for k in range(flat.size):
            original = flat[k]
            flat[k] = original + h
            plus = loss()
            flat[k] = original - h
            minus = loss()
            flat[k] = original
            numeric.append((plus - minus) / (2 * h))
        analytic.append(grad.reshape(-1))
    net.rng.bit_generator.state = rng_state
    g, g_num = np.concatenate(analytic).astype(np.float64), np.asarray(numeric)
    return float(np.linalg.norm(g - g_num) / np.linalg.norm(g + g_num))
