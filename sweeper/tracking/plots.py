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
    # The figure is built without pyplot (no global figure manager, no backend switch) and with
    # fixed margins instead of tight_layout, which draws the figure once more just to measure it.
    # benchmarks/sweep_overhead.py measured ~290 ms per trial through pyplot + tight_layout.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.11, top=0.93)
    ax = fig.add_subplot()
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
    fig.savefig(path)
