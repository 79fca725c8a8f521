"""The target: for regression a scaling y' = (g(y) − shift) / scale fitted on training targets
(g the identity, or ln for ``log``); for classification the task, the classes fitted on the
training rows and their codes."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_bool_dtype, is_numeric_dtype

from sweeper.data.columns import LARGEST, label_cells, label_text, looks_numeric
from sweeper.errors import ConfigError, DataError


def _standard(y: np.ndarray) -> tuple[float, float]:
    """shift = mean(y), scale = sqrt(mean((y − mean)²)); 1 for a constant target."""
    spread = float(y.std())
    return float(y.mean()), spread if y.min() != y.max() else 1.0


def _minmax(y: np.ndarray) -> tuple[float, float]:
    """shift = min(y), scale = max(y) − min(y), so training targets land in [0, 1]."""
    low, high = float(y.min()), float(y.max())
    return low, (high - low) if high != low else 1.0


def _exp(z: np.ndarray) -> np.ndarray:
    """e^z with z clipped to ±ln(`LARGEST`): a huge network output gives a prediction of at most
    `LARGEST` (so the RMSE stays finite), not inf. A diverging trial is caught by the trainer's
    divergence check on the scaled loss, not here."""
    bound = np.log(LARGEST)
    return np.exp(np.clip(z, -bound, bound))


class TargetScaling(NamedTuple):
    """One ``data.target_scaling``: y' = (g(y) − shift) / scale with (shift, scale) = fit(g(y_train)),
    and back y = g⁻¹(y'·scale + shift); g is `warp`, g⁻¹ `unwarp`. `positive`: g needs y > 0."""

    fit: Callable[[np.ndarray], tuple[float, float]]
    warp: Callable[[np.ndarray], np.ndarray] = np.asarray
    unwarp: Callable[[np.ndarray], np.ndarray] = np.asarray
    positive: bool = False


TARGET_SCALINGS: dict[str, TargetScaling] = {
    "standard": TargetScaling(_standard),
    "minmax": TargetScaling(_minmax),
    "none": TargetScaling(lambda y: (0.0, 1.0)),  # the identity: y' = y
    # For positive targets spanning magnitudes (prices): the network sees a standardised ln y.
    "log": TargetScaling(_standard, np.log, _exp, positive=True),
}


def target_scaling_of(name: str) -> TargetScaling:
    """The scaling called `name`; ConfigError listing the allowed names."""
    if name not in TARGET_SCALINGS:
        raise ConfigError(f"data.target_scaling: unknown value {name!r}; allowed: {', '.join(TARGET_SCALINGS)}")
    return TARGET_SCALINGS[name]


def warp_target(name: str, y: np.ndarray, target: str, what: str = "rows") -> np.ndarray:
    """g(y) of scaling `name` for targets `y` of shape (n,), float64 (ln y for ``log``).

    DataError, one line, when g needs y > 0 and some are not: it names the setting, the target
    column, how many of the `what` are ≤ 0 and the smallest."""
    y = np.asarray(y, dtype=np.float64)
    scaling = target_scaling_of(name)
    if scaling.positive and (y <= 0).any():
        raise DataError(
            f"data.target_scaling={name}: target column {target!r} has {int((y <= 0).sum())} value(s) <= 0 in the "
            f"{what} (smallest: {np.nanmin(y):g}); {name} needs every target > 0: use data.target_scaling=standard, "
            "or drop those rows"
        )
    return scaling.warp(y)


def fit_target_scaling(name: str, y: np.ndarray, target: str = "target") -> tuple[float, float]:
    """(shift, scale) of scaling `name` fitted on g(y) of the training targets `y`, shape (n,)
    (`warp_target`: DataError for a ``log`` target ≤ 0)."""
    return target_scaling_of(name).fit(warp_target(name, y, target, "training rows"))


# ---------------------------------------------------------------------- classification
#: ``data.task``: ``auto`` decides from the target column (`resolve_task`).
TASKS = ("auto", "regression", "classification")
#: ``split.stratify``: ``auto`` is on for classification, off for regression.
STRATIFY = ("auto", True, False)
#: A classification target with more distinct values than this, that are also at least half
#: its rows, is a number or an identifier, not a class.
MAX_CLASSES = 100


def resolve_task(task: str, series: pd.Series) -> str:
    """``regression`` or ``classification`` for ``data.task`` and the target column.

    ``auto``: classification when the target holds text (most cells not numbers) or booleans
    (also with empty cells, which pandas reads as objects), regression when it holds numbers. An integer target with few distinct values (a digit, a
    star rating) is a number to auto: classify it with ``data.task=classification``.
    """
    if task not in TASKS:
        raise ConfigError(f"data.task: unknown value {task!r}; allowed: {', '.join(TASKS)}")
    if task != "auto":
        return task
    labels = infer_dtype(series, skipna=True) == "boolean" or not looks_numeric(series)
    return "classification" if labels else "regression"


def check_stratify(stratify: object) -> None:
    """ConfigError unless ``split.stratify`` is ``auto``, true or false (1 and 0.0 are not)."""
    if stratify not in STRATIFY or isinstance(stratify, (int, float)) and not isinstance(stratify, bool):
        raise ConfigError(f"split.stratify: unknown value {stratify!r}; allowed: auto, true, false")


def resolve_stratify(stratify: object, task: str) -> bool:
    """``split.stratify`` as a bool: ``auto`` → on for classification; true needs classes."""
    check_stratify(stratify)
    if stratify == "auto":
        return task == "classification"
    if stratify and task != "classification":
        raise ConfigError("split.stratify=true needs classes to stratify on; data.task is regression")
    return bool(stratify)


def label_cells_of_target(series: pd.Series) -> np.ndarray:
    """The target's cells as class labels, shape (n,): float64 with NaN for missing when the
    column holds numbers (so 4 and 4.0 are one class), else str objects with None for missing
    (booleans become ``False``/``True``)."""
    numeric = is_numeric_dtype(series) and not is_bool_dtype(series)
    return label_cells(series, numeric=numeric)


class Labels:
    """The classes of a classification target, fitted on the training rows.

    ``classes`` holds the K sorted distinct training labels (float64 or unicode, storable without
    pickle); class code k ∈ 0..K−1 is ``classes[k]``. Targets for the network are one-hot rows
    (n, K); a network with one sigmoid output (K = 2) trains on their second column.
    """

    def __init__(self, classes: np.ndarray) -> None:
        self.classes = np.asarray(classes)

    def names(self) -> list[str]:
        """The classes as text (``3.0`` → ``3``), in code order."""
        return [label_text(c) for c in self.classes]

    def codes(self, cells: np.ndarray, what: str = "rows") -> np.ndarray:
        """Class codes (n,) int64 of typed ``cells``; DataError naming the labels that are not
        training classes (and how many rows have them) and ``what`` rows they are in."""
        codes = pd.Index(self.classes).get_indexer(cells)
        unseen = codes < 0
        if unseen.any():
            values, counts = np.unique(np.asarray(cells, dtype=self.classes.dtype)[unseen], return_counts=True)
            named = ", ".join(f"{label_text(v)!r} ({n} row{'s' if n > 1 else ''})" for v, n in zip(values, counts))
            raise DataError(
                f"data.target: class {named} {'is' if len(values) == 1 else 'are'} in the {what} but not in the "
                f"training rows; the network cannot predict a class it never saw (use split.stratify=true, "
                "more rows of that class, or drop them)"
            )
        return codes.astype(np.int64)

    def one_hot(self, codes: np.ndarray, dtype: str = "float64") -> np.ndarray:
        """Rows (n, K) with 1 at each code's column, 0 elsewhere."""
        out = np.zeros((len(codes), len(self.classes)), dtype=dtype)
        out[np.arange(len(codes)), codes] = 1.0
        return out

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Labels (n,) of ``codes``: int64 for whole-number classes, float64 for others, str for text."""
        labels = self.classes[np.asarray(codes, dtype=np.int64)]
        if self.classes.dtype.kind != "f":
            return labels.astype(object)
        return labels.astype(np.int64) if np.all(np.mod(self.classes, 1) == 0) else labels
