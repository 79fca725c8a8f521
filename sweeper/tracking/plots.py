"""``loss_curves.png``: train, validation and test loss per epoch with the best epoch marked."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

CURVES = (("train_loss", "train"), ("val_loss", "validation"), ("test_loss", "test"))


def plot_loss_curves(history: Mapping[str, Sequence[float]], best_epoch: int, path: str | Path) -> None:
    """Write the loss curves of ``history`` (one value per epoch, epochs from 1) to ``path``.

    The y axis is logarithmic when the finite, positive losses span more than a factor of ten,
    so both the first epochs and the converged tail stay readable.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, and no GUI toolkit import
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        finite = []
        for key, label in CURVES:
            values = np.asarray(history.get(key, ()), dtype=np.float64)
            if values.size:
                ax.plot(np.arange(1, values.size + 1), values, label=label)
                finite.append(values[np.isfinite(values) & (values > 0)])
        finite_values = np.concatenate(finite) if finite else np.empty(0)
        if finite_values.size and finite_values.max() > 10 * finite_values.min():
            ax.set_yscale("log")
        if best_epoch > 0:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss  ½·mean((ŷ − y)²), scaled target")
        ax.set_title("Loss per epoch")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
