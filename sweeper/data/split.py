"""Assigning rows to the train, validation and test splits."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

from sweeper.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


def check_split(test_size: object, val_size: object, seed: object) -> None:
    """ConfigError naming ``split.test_size``, ``split.val_size`` or ``split.seed`` unless both
    sizes are fractions in (0, 1) with a sum below 1 and the seed is an integer >= 0.

    `split_indices` calls it, and ``sweeper.config.validate`` before any data is read.
    """
    for key, value in (("split.test_size", test_size), ("split.val_size", val_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
            raise ConfigError(f"{key}: {value!r} is out of range; allowed: a fraction in (0, 1)")
    if test_size + val_size >= 1.0:
        raise ConfigError(
            f"split.test_size + split.val_size: {test_size + val_size!r} is out of range; allowed: a sum below 1"
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"split.seed: {seed!r} is out of range; allowed: an integer >= 0")


def split_indices(
    n_rows: int, test_size: float = 0.2, val_size: float = 0.1, shuffle: bool = True, seed: int = 0,
    stratify: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Row positions of each split: {"train": (n_train,), "val": (n_val,), "test": (n_test,)}.

    n_test = ⌊test_size·n + ½⌋ and n_val = ⌊val_size·n + ½⌋ (fractions of all rows, rounded half
    up); training gets the rest. The order is `numpy.random.default_rng(seed).permutation(n)`
    when `shuffle`, else the file order; train takes the first n_train positions of that order,
    then validation, then test (so unshuffled, the test rows are the last rows of the file).
    The splits are disjoint and together cover every row; equal inputs give equal arrays.

    ``stratify`` (class codes, shape (n_rows,)) keeps each class's share in every split: class c
    with n_c rows gets test_size·n_c test rows and val_size·n_c validation rows, each rounded
    down and the leftover rows of the split's total handed to the classes with the largest
    remainders (largest-remainder apportionment), so every class is within one row of its exact
    share and the totals are n_test and n_val as above. A class keeps at least one training row.
    Rows are taken from each class in the order above; each split is then in that order too.
    """
    check_split(test_size, val_size, seed)
    test_size, val_size = float(test_size), float(val_size)
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
    if stratify is not None:
        return _stratified(order, np.asarray(stratify), n_test, n_val)
    return {
        "train": order[:n_train],
        "val": order[n_train : n_train + n_val],
        "test": order[n_train + n_val :],
    }


def _apportion(total: int, quotas: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Integer counts (K,) summing to ``total`` (when ``room`` allows), each ⌊quota⌋ or ⌈quota⌉
    and at most ``room``: the floors, then one more for the largest remainders."""
    counts = np.minimum(np.floor(quotas).astype(np.int64), room)
    remainders = np.where(counts < room, quotas - counts, -np.inf)
    for k in np.argsort(-remainders, kind="stable"):
        if counts.sum() >= total or not np.isfinite(remainders[k]):
            break
        counts[k] += 1
    return counts


def _stratified(order: np.ndarray, codes: np.ndarray, n_test: int, n_val: int) -> dict[str, np.ndarray]:
    """The split of `split_indices` with each class apportioned (``codes`` (n_rows,))."""
    _, class_index, per_class = np.unique(codes[order], return_inverse=True, return_counts=True)
    n = per_class.sum()
    # Each class keeps one training row: test and validation share the rest.
    test = _apportion(n_test, per_class * (n_test / n), per_class - 1)
    val = _apportion(n_val, per_class * (n_val / n), per_class - 1 - test)
    position = pd.Series(class_index).groupby(class_index).cumcount().to_numpy()  # rank within its class
    is_val = position < val[class_index]
    is_test = ~is_val & (position < val[class_index] + test[class_index])
    return {
        "train": order[~is_val & ~is_test],
        "val": order[is_val],
        "test": order[is_test],
    }


#: ``split.folds=auto``: K-fold cross-validation below this many train + validation rows, where
#: one validation split is a small sample (docs/cross-validation.md), one split from it on.
AUTO_FOLDS, AUTO_FOLDS_BELOW = 5, 2000


def check_folds(folds: object) -> None:
    """ConfigError naming ``split.folds`` unless it is ``auto`` or an integer >= 1."""
    if folds == "auto" and isinstance(folds, str):
        return
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 1:
        raise ConfigError(f"split.folds: {folds!r} is out of range; allowed: auto or an integer >= 1 "
                          "(1 = one validation split, K >= 2 = K-fold cross-validation)")


def resolve_folds(folds: object, n_rows: int) -> int:
    """K for ``split.folds`` and the ``n_rows`` train + validation rows: ``auto`` → `AUTO_FOLDS`
    below `AUTO_FOLDS_BELOW` rows, else 1; DataError when K exceeds the rows."""
    check_folds(folds)
    k = (AUTO_FOLDS if n_rows < AUTO_FOLDS_BELOW else 1) if folds == "auto" else int(folds)
    if k > n_rows:
        raise DataError(f"split.folds={k}: only {n_rows} train + validation rows; each fold needs one "
                        "(lower split.folds)")
    return k


def fold_numbers(n_rows: int, folds: int, seed: int = 0, stratify: np.ndarray | None = None) -> np.ndarray:
    """Fold k ∈ 0..K−1 of each of ``n_rows`` rows, shape (n_rows,) int64: the rows in the order
    `numpy.random.default_rng((seed, K)).permutation(n_rows)` (with ``stratify``, class codes
    (n_rows,): stably sorted by class in that order) are dealt to folds 0, 1, …, K−1, 0, 1, ….
    Fold sizes differ by at most one row, and so does each class's count across folds."""
    order = np.random.default_rng((seed, folds)).permutation(n_rows)
    if stratify is not None:
        order = order[np.argsort(np.asarray(stratify)[order], kind="stable")]
    numbers_ = np.empty(n_rows, dtype=np.int64)
    numbers_[order] = np.arange(n_rows) % folds
    return numbers_
