"""Early stopping on a monitored loss (the validation loss in ``fit``)."""
from __future__ import annotations

import math

import numpy as np

from sweeper.nn import Network, check_range


class EarlyStopping:
    """Stop when the monitored loss has not improved for ``patience`` epochs.

    Epoch e improves when loss_e < best − min_delta; training stops at the first epoch e
    with e − best_epoch ≥ patience. With ``restore_best`` the network gets back the weights
    it had at the end of ``best_epoch`` when training ends.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, restore_best: bool = True) -> None:
        check_range("patience", patience, lambda v: v >= 1, ">= 1")
        check_range("min_delta", min_delta, lambda v: v >= 0, ">= 0")
        self.patience, self.min_delta, self.restore_best = int(patience), float(min_delta), restore_best
        self.best_loss = math.inf
        self.best_epoch = 0
        self._best_params: tuple[list[np.ndarray], list[np.ndarray]] | None = None

    def update(self, epoch: int, loss: float, net: Network) -> bool:
        """Record epoch ``epoch``'s loss; True means stop now."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = loss, epoch
            if self.restore_best:
                self._best_params = net.get_params()
            return False
        return epoch - self.best_epoch >= self.patience

    def restore(self, net: Network) -> None:
        """Put the best epoch's weights back into ``net`` (when ``restore_best``)."""
        if self.restore_best and self._best_params is not None:
            net.set_params(*self._best_params)
