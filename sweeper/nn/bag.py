"""A bag: K networks of one shape that predict as one (the K fold networks of a cross-validated run)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .network import Network


class Bag:
    """K ≥ 1 trained networks with the same sizes, output and loss, predicting their mean:
    ŷ = (1/K)·Σₖ netₖ.forward(X), shape (n_samples, n_outputs). For a classifier the outputs are
    class probabilities, so the bag's are the members' mean probabilities."""

    def __init__(self, members: Sequence[Network]) -> None:
        if not members:
            raise ValueError("a bag needs at least one network")
        first = members[0]
        for net in members[1:]:
            if (net.sizes, net.output_activation.name, net.loss_function.name, net.dtype) != (
                    first.sizes, first.output_activation.name, first.loss_function.name, first.dtype):
                raise ValueError(f"a bag's networks must match: {net!r} is not like {first!r}")
        self.members = list(members)
        self.sizes, self.dtype, self.loss_function = first.sizes, first.dtype, first.loss_function

    def forward(self, X: np.ndarray) -> np.ndarray:
        """The members' mean output (n_samples, n_outputs), evaluation mode."""
        total = self.members[0].forward(X)
        for net in self.members[1:]:
            total = total + net.forward(X)
        return total / len(self.members)

    def data_loss(self, y_pred: np.ndarray, y: np.ndarray) -> float:
        """The members' loss function (no penalties) on the bag's predictions."""
        return self.members[0].data_loss(y_pred, y)

    def __repr__(self) -> str:
        return f"Bag({len(self.members)} x {self.members[0]!r})"
