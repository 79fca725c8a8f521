"""``loss_curves.png``: one figure redrawn per run gives the pixels of a freshly built figure."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from sweeper.tracking import plots


def _history(epochs: int, spread: float, missing: str | None = None) -> dict[str, list[float]]:
    """Three decaying curves; ``spread`` > 10 makes the y axis logarithmic."""
    curves = {key: list(np.geomspace(spread, 1.0, epochs) * (1 + 0.2 * i)) for i, (key, _) in enumerate(plots.CURVES)}
    if missing:
        del curves[missing]
    return curves


# Log and linear axes, a best epoch and none, a split without a curve, a single epoch.
RUNS = [
    (_history(120, 1e3), 50),
    (_history(40, 3.0), 10),
    (_history(200, 1e5, missing="test_loss"), 0),
    (_history(1, 1.0), 1),
    (_history(90, 50.0, missing="val_loss"), 80),
    (_history(60, 2.0), 0),
]


def test_a_reused_figure_draws_every_run_as_a_fresh_figure_would(tmp_path):
    shared = plots._LossFigure()
    for i, (history, best) in enumerate(RUNS + RUNS[::-1]):  # each run after different ones
        shared.draw(history, best, tmp_path / f"shared{i}.png")
        plots._LossFigure().draw(history, best, tmp_path / f"fresh{i}.png")
        shared_pixels = matplotlib.image.imread(tmp_path / f"shared{i}.png")
        fresh_pixels = matplotlib.image.imread(tmp_path / f"fresh{i}.png")
        assert shared_pixels.shape == (450, 700, 4)
        assert np.array_equal(shared_pixels, fresh_pixels), f"run {i} differs after the runs before it"


@pytest.mark.parametrize("history, best", RUNS[:2])
def test_each_run_changes_the_picture(tmp_path, history, best):
    """The comparison above is not between two blank images."""
    plots.plot_loss_curves(history, best, tmp_path / "a.png")
    plots.plot_loss_curves(RUNS[2][0], RUNS[2][1], tmp_path / "b.png")
    a, b = (matplotlib.image.imread(tmp_path / name) for name in ("a.png", "b.png"))
    assert not np.array_equal(a, b)
    assert len(np.unique(a.reshape(-1, 4), axis=0)) > 50  # lines, text and grid, not a blank canvas


def test_a_run_that_blew_up_still_gets_its_picture(tmp_path):
    history = {"train_loss": [1.0, 40.0, 8e170, 3e300], "val_loss": [1.2, 55.0, float("inf"), float("nan")],
               "test_loss": [1.1, 50.0, 1e308, float("inf")], "lr": [50.0] * 4}
    plots.plot_loss_curves(history, 1, tmp_path / "blown.png")
    picture = matplotlib.image.imread(tmp_path / "blown.png")
    assert picture.shape[:2] == (450, 700)
    clipped = plots._displayable([np.asarray(history["train_loss"]), np.asarray(history["val_loss"])])
    assert clipped[0].max() == plots.DISPLAY_RANGE * 1.0 and np.isnan(clipped[1][2:]).all()
