"""Stochastic gradient descent with momentum, plain or Nesterov.

The optimiser owns the velocities; the network owns the parameters and the schedule owns the
learning rate: each step is given the rate to use (``fit`` asks the schedule once per epoch).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ._checks import check_range


class SGD:
    """SGD in velocity form, the update scikit-learn's ``MLPRegressor`` uses.

        v ← μ·v − η·∇
        W ← W + v               (plain momentum)
        W ← W + μ·v − η·∇       (Nesterov, with the new v)

    η is the ``learning_rate`` given to each ``update_params`` call (the schedule's; nothing
    here stores one). ``params`` are live arrays (e.g. ``Network.params()``) updated in place.
    When they are
    consecutive views of one flat array (as ``Network.params()`` and a workspace's gradients
    are), each step updates that flat array with a handful of whole-array operations instead of
    a handful per parameter; the arithmetic is the same, element by element.
    """

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        check_range("momentum", momentum, lambda v: 0 <= v < 1, "in [0, 1)")
        self.params = list(params)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self._flat_param = _flat_base(self.params)
        if self._flat_param is not None:
            self._flat_velocity = np.zeros_like(self._flat_param)
            self.velocities = _views_like(self._flat_velocity, self.params)
        else:
            self.velocities = [np.zeros_like(p) for p in self.params]
        self._scratch: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(param) -> 2 buffers
        self._last_grads: tuple[list[np.ndarray], np.ndarray | None] = ([], None)

    def update_params(self, grads: Sequence[np.ndarray], learning_rate: float) -> None:
        """Apply one step of rate η = ``learning_rate`` given gradients aligned with ``params``."""
        # A Python float takes the parameters' dtype; a NumPy float64 would make a float32
        # network's step in float64.
        learning_rate = float(learning_rate)
        flat_grad = self._flat_grad(grads) if self._flat_param is not None else None
        if flat_grad is not None:
            self._step(self._flat_param, self._flat_velocity, flat_grad, learning_rate)
            return
        for param, velocity, grad in zip(self.params, self.velocities, grads):
            self._step(param, velocity, grad, learning_rate)

    def _step(self, param: np.ndarray, velocity: np.ndarray, grad: np.ndarray, learning_rate: float) -> None:
        """The update of the class docstring on one array, in place, into reused buffers."""
        mu = self.momentum
        step, nesterov_step = self._buffers(param)
        np.multiply(grad, learning_rate, out=step)  # η·∇
        if mu == 0.0:
            param -= step
            return
        velocity *= mu
        velocity -= step  # v ← μ·v − η·∇
        if self.nesterov:
            np.multiply(velocity, mu, out=nesterov_step)
            nesterov_step -= step
            param += nesterov_step  # W ← W + μ·v − η·∇
        else:
            param += velocity  # W ← W + v

    def _buffers(self, param: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        buffers = self._scratch.get(id(param))
        if buffers is None:
            buffers = self._scratch[id(param)] = (np.empty_like(param), np.empty_like(param))
        return buffers

    def _flat_grad(self, grads: Sequence[np.ndarray]) -> np.ndarray | None:
        """The flat array ``grads`` tile, or None; remembered for the same list of arrays."""
        seen, flat = self._last_grads
        if len(seen) == len(grads) and all(g is s for g, s in zip(grads, seen)):
            return flat
        flat = _flat_base(grads)
        if flat is not None and (flat.dtype != self._flat_param.dtype
                                 or [g.shape for g in grads] != [p.shape for p in self.params]):
            flat = None
        self._last_grads = (list(grads), flat)
        return flat


def _flat_base(arrays: Sequence[np.ndarray]) -> np.ndarray | None:
    """The 1-D array that ``arrays`` are consecutive contiguous views of, in order, or None."""
    base = arrays[0].base if len(arrays) else None
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    start = address = base.__array_interface__["data"][0]
    for a in arrays:
        if (a.base is not base or a.dtype != base.dtype or not a.flags.c_contiguous
                or a.__array_interface__["data"][0] != address):
            return None
        address += a.nbytes
    return base if address == start + base.nbytes else None


def _views_like(flat: np.ndarray, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Consecutive views of ``flat`` shaped like ``arrays``."""
    views, start = [], 0
    for a in arrays:
        views.append(flat[start : start + a.size].reshape(a.shape))
        start += a.size
    return views
