"""``loss_curves.png``: train, validation and test loss per epoch with the best epoch marked
(a cross-validated run's: the fold means, validation ± one standard deviation over the folds);
``confusion_matrix.png``: a classifier's test-set counts per true and predicted class."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sweeper.errors import one_line

CURVES = (("train_loss", "train"), ("val_loss", "validation"), ("test_loss", "test"))
#: What `plot_loss_curves` reads of a history: the curves, and a cross-validated run's spread.
DRAWN = (*(key for key, _ in CURVES), "val_loss_std")
#: The y label per loss (``Network.loss_function.name``).
LOSS_LABELS = {"squared_error": "loss  ½·mean((ŷ − y)²), scaled target", "cross_entropy": "cross-entropy  −mean(log p(true class))"}


class _LossFigure:
    """One figure, axes, three lines and a marker, redrawn with each run's data.

    Building the figure is half the cost of a plot (~85 ms fresh, ~45 ms redrawn on the same
    figure; benchmarks/sweep_overhead.py), and a sweep draws one per trial. Everything that
    differs between runs is set on every call, so a redraw gives the same pixels as a fresh
    figure (tests/test_run.py checks this).
    """

    def __init__(self) -> None:
        # No pyplot: no global figure manager and no backend switch in the user's process. Fixed
        # margins instead of tight_layout, which draws the figure once more just to measure it.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(7, 4.5), dpi=100)
        FigureCanvasAgg(self.fig)
        self.fig.subplots_adjust(left=0.1, right=0.97, bottom=0.11, top=0.93)
        self.ax = self.fig.add_subplot()
        self.lines = [self.ax.plot([], [])[0] for _ in CURVES]
        self.best = self.ax.axvline(1, color="grey", linestyle="--", linewidth=1)
        self.band: Any = None
        self.ax.set_xlabel("epoch")
        self.ax.set_title("Loss per epoch")

    def draw(self, history: Mapping[str, Sequence[float]], best_epoch: int, path: str | Path,
             loss: str = "squared_error") -> None:
        ax = self.ax
        ax.set_ylabel(LOSS_LABELS[loss])
        curves = _displayable([np.asarray(history.get(key, ()), dtype=np.float64) for key, _ in CURVES])
        shown: list[Any] = [line for line, values in zip(self.lines, curves) if values.size]
        for line, (_, label), values in zip(self.lines, CURVES, curves):
            line.set_data(np.arange(1, values.size + 1), values)
            line.set_visible(bool(values.size))
            line.set_label(label)
        if self.band is not None:
            self.band.remove()
            self.band = None
        spread = np.asarray(history.get("val_loss_std", ()), dtype=np.float64)
        ax.set_title("Loss per epoch, mean of the folds" if spread.size else "Loss per epoch")
        if spread.size and spread.size == curves[1].size:
            mean = curves[1]
            # Clipped above zero: the band stays drawable on the logarithmic axis.
            self.band = ax.fill_between(np.arange(1, mean.size + 1), np.maximum(mean - spread, 0.01 * mean),
                                        mean + spread, color=self.lines[1].get_color(), alpha=0.2, linewidth=0,
                                        label="validation ± 1 sd over the folds")
            shown.append(self.band)
        finite = np.concatenate([values[np.isfinite(values) & (values > 0)] for values in curves])
        ax.set_yscale("log" if finite.size and finite.max() > 10 * finite.min() else "linear")
        # The limits come from the curves alone (the best epoch lies within them): a vertical
        # line's x passes through axes transforms, and its rounding would reach the limits.
        self.best.set_visible(False)
        ax.relim(visible_only=True)
        ax.autoscale_view()
        self.best.set_visible(best_epoch > 0)
        if best_epoch > 0:
            self.best.set_xdata([best_epoch, best_epoch])
            self.best.set_label(f"best epoch ({best_epoch})")
            shown.append(self.best)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(handles=shown)
        self.fig.savefig(path)


#: Losses above this many times the smallest positive one are drawn at that height: a run that
#: blew up (8e170) still gets a readable picture, and matplotlib never meets a value it cannot place.
DISPLAY_RANGE = 1e8


def _displayable(curves: list[np.ndarray]) -> list[np.ndarray]:
    """The curves with NaN/inf as gaps (NaN) and values clipped to DISPLAY_RANGE × the smallest
    finite positive loss."""
    finite = [c[np.isfinite(c) & (c > 0)] for c in curves]
    floor = min((f.min() for f in finite if f.size), default=1.0)
    return [np.clip(np.where(np.isfinite(c), c, np.nan), None, DISPLAY_RANGE * floor) for c in curves]


_figures = threading.local()  # one figure per thread: matplotlib figures are not thread-safe


def plot_loss_curves(history: Mapping[str, Sequence[float]], best_epoch: int, path: str | Path,
                     loss: str = "squared_error") -> None:
    """Write the loss curves of ``history`` (one value per epoch, epochs from 1) to ``path``.

    The y axis is logarithmic when the finite, positive losses span more than a factor of ten,
    so both the first epochs and the converged tail stay readable.
    """
    figure = getattr(_figures, "figure", None)
    if figure is None:
        figure = _figures.figure = _LossFigure()
    figure.draw(history, best_epoch, path, loss)


def draw_and_log_loss_curves(history: dict, best_epoch: int, loss: str, tracking_uri: str, run_id: str) -> str | None:
    """Draw ``loss_curves.png`` and log it to run ``run_id`` (in a launcher's drawing process;
    an artifact can be logged to an ended run). Returns what went wrong, if anything: a failure
    costs the run its picture only."""
    from mlflow import MlflowClient

    try:
        with tempfile.TemporaryDirectory(prefix="sweeper-plot-") as folder:
            path = Path(folder) / "loss_curves.png"
            plot_loss_curves(history, best_epoch, path, loss)
            MlflowClient(tracking_uri).log_artifact(run_id, str(path))
    except Exception as error:
        return f"loss_curves.png of MLflow run {run_id} not drawn: {one_line(error)}"
    return None


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts (K, K): row = true class code, column = predicted class code (scikit-learn's
    ``confusion_matrix`` layout)."""
    return np.bincount(np.asarray(true) * n_classes + np.asarray(predicted), minlength=n_classes * n_classes
                       ).reshape(n_classes, n_classes)


def plot_confusion_matrix(matrix: np.ndarray, names: Sequence[str], path: str | Path, title: str) -> None:
    """Write ``matrix`` (K, K) as a heat map with its counts, true classes down, predicted across."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = len(names)
    side = min(3.0 + 0.45 * k, 12.0)
    fig = Figure(figsize=(side + 1.0, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), labels=names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if k <= 30:
        high = matrix.max() if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > high / 2 else "black")
    fig.tight_layout()
    fig.savefig(path)
