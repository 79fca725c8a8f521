"""Assigning rows to the train, validation and test splits."""

from __future__ import annotations

import math
import numbers

import numpy as np

from sweeper.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def _check_fraction(key: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
        raise ConfigError(f"{key}: {value!r} is out of range; allowed: a fraction in (0, 1)")
    return float(value)


def split_indices(
    n_rows: int, test_size: float = 0.2, val_size: float = 0.1, shuffle: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Row positions of each split: {"train": (n_train,), "val": (n_val,), "test": (n_test,)}.

    n_test = ⌊test_size·n + ½⌋ and n_val = ⌊val_size·n + ½⌋ (fractions of all rows, rounded half
    up); training gets the rest. The order is `numpy.random.default_rng(seed).permutation(n)`
    when `shuffle`, else the file order; train takes the first n_train positions of that order,
    then validation, then test (so unshuffled, the test rows are the last rows of the file).
    The splits are disjoint and together cover every row; equal inputs give equal arrays.
    """
    test_size = _check_fraction("split.test_size", test_size)
    val_size = _check_fraction("split.val_size", val_size)
    if test_size + val_size >= 1.0:
        raise ConfigError(
            f"split.test_size + split.val_size = {test_size + val_size:g}; allowed: a sum below 1"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"split.seed: {seed!r} is not an integer")
    n_test = math.floor(test_size * n_rows + 0.5)
    n_val = math.floor(val_size * n_rows + 0.5)
    n_train = n_rows - n_test - n_val
    for key, fraction, split, count in (
        ("split.test_size", test_size, "test", n_test),
        ("split.val_size", val_size, "val", n_val),
    ):
        if count < 1:
            raise DataError(
                f"{key}={fraction:g} gives 0 {split} rows out of {n_rows}; "
                f"each split needs at least 1 row (use at least {0.5 / n_rows:.3g})"
            )
    if n_train < 1:
        raise DataError(
            f"split.test_size={test_size:g} and split.val_size={val_size:g} leave 0 training rows "
            f"out of {n_rows}; lower them"
        )
    order = np.random.default_rng(seed).permutation(n_rows) if shuffle else np.arange(n_rows)
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }
