"""One encoder per kind of input column, and the value checks they share.

Kinds (the config name is the registry key in `COLUMN_KINDS`):

- ``numeric``: z = (x − μ) / σ with μ and σ = sqrt(mean((x − μ)²)) of the training rows;
  σ = 1 when the column is constant on the training rows, so it encodes as 0, never NaN.
- ``binary``: a column with exactly two distinct training values (0/1, no/yes, false/true,
  any two strings). The smaller value (numerically, or lexicographically for strings) → −1,
  the larger → +1, so no → −1, yes → +1, false → −1, true → +1, 0 → −1, 1 → +1.
  A value seen in neither level (only possible on new rows) encodes as 0.
- ``onehot``: one output per training category, sorted; a category not seen in the training
  rows encodes as all zeros.

Row numbers in messages count data rows from 1 (the first line under the header is row 1).
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import numpy as np
import pandas as pd

from sweeper.errors import DataError


def _row(mask: np.ndarray) -> int:
    """1-based position of the first True in `mask`."""
    return int(np.flatnonzero(mask)[0]) + 1


def _subject(name: str, is_target: bool) -> str:
    return f"target column '{name}'" if is_target else f"column '{name}'"


def check_no_missing(series: pd.Series, name: str, is_target: bool = False) -> None:
    """DataError naming the column if any value is missing (empty cell, NA, NaN)."""
    missing = series.isna().to_numpy()
    if missing.any():
        raise DataError(
            f"{_subject(name, is_target)} has {int(missing.sum())} missing value(s) "
            f"(first in row {_row(missing)}); fill or drop those rows"
        )


def looks_numeric(series: pd.Series) -> bool:
    """True for a numeric dtype, or text of which at least half the non-missing cells parse
    as numbers: such a column is numeric with typos, not a string column to one-hot encode."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return True
    counts = series.value_counts()  # parse each distinct text once, not every cell
    if counts.sum() == 0:
        return False
    parses = pd.to_numeric(counts.index.to_series(), errors="coerce").notna().to_numpy()
    return bool(counts.to_numpy()[parses].sum() >= 0.5 * counts.sum())


def numeric_values(series: pd.Series, name: str, is_target: bool = False) -> np.ndarray:
    """The column as a float64 array of shape (n,); DataError on non-numeric, missing or
    infinite values, naming the column, the first bad value and its row."""
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64)
    check_no_missing(series, name, is_target)
    if pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64)
    else:
        parsed = pd.to_numeric(series, errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            first = _row(bad)
            hint = (
                "the target must be numeric"
                if is_target
                else "list it in data.categorical to one-hot encode it, or fix the file"
            )
            raise DataError(
                f"{_subject(name, is_target)} has non-numeric values "
                f"(first: {series.iloc[first - 1]!r} in row {first}); {hint}"
            )
        values = parsed.to_numpy(dtype=np.float64)
    infinite = ~np.isfinite(values)
    if infinite.any():
        first = _row(infinite)
        raise DataError(
            f"{_subject(name, is_target)} has infinite values "
            f"(first: {values[first - 1]} in row {first}); only finite numbers are allowed"
        )
    return values


def label_values(series: pd.Series, name: str, numeric: bool) -> np.ndarray:
    """Cell values as labels to compare with fitted levels: float64 when the levels are
    numbers (so 4 and 4.0 match), else str. Shape (n,)."""
    if numeric:
        return numeric_values(series, name)
    check_no_missing(series, name)
    return series.astype(str).to_numpy(dtype=object)


def _label_array(values: np.ndarray) -> np.ndarray:
    """Sorted distinct labels as float64 or fixed-width unicode: storable without pickle."""
    levels = np.sort(pd.unique(values))  # hash then sort the few distinct values
    if levels.dtype == object:
        return levels.astype(str)
    return levels.astype(np.float64)


def _label_text(level: object) -> str:
    if isinstance(level, (float, np.floating)) and float(level).is_integer():
        return str(int(level))
    return str(level)


class Column:
    """Base of the column encoders: `fit` on training cells, `transform` any cells.

    `arrays()` / `from_arrays()` give the fitted state as numpy arrays without object dtype.
    """

    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def output_names(self) -> list[str]:
        return [self.name]

    def fit(self, series: pd.Series) -> "Column":  # pragma: no cover - interface
        raise NotImplementedError

    def transform(self, series: pd.Series) -> np.ndarray:  # pragma: no cover - interface
        """Encoded cells, shape (n, len(output_names)), float64."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray]) -> "Column":  # pragma: no cover
        raise NotImplementedError


class NumericColumn(Column):
    kind = "numeric"

    def __init__(self, name: str, mean: float = 0.0, scale: float = 1.0) -> None:
        super().__init__(name)
        self.mean = float(mean)
        self.scale = float(scale)

    def fit(self, series: pd.Series) -> "NumericColumn":
        values = numeric_values(series, self.name)
        if values.min() == values.max():
            # A computed σ of identical floats can be ~1e-17 rather than 0; treat it as 0.
            self.mean, self.scale = float(values[0]), 1.0
        else:
            self.mean = float(values.mean())
            self.scale = float(values.std())
        return self

    def transform(self, series: pd.Series) -> np.ndarray:
        values = numeric_values(series, self.name)
        return ((values - self.mean) / self.scale)[:, None]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": np.array(self.mean), "scale": np.array(self.scale)}

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray]) -> "NumericColumn":
        return cls(name, float(arrays["mean"]), float(arrays["scale"]))


class BinaryColumn(Column):
    kind = "binary"

    def __init__(self, name: str, levels: np.ndarray | None = None) -> None:
        super().__init__(name)
        self.levels = levels  # (2,), float64 or unicode, sorted: levels[0] → −1, levels[1] → +1

    def fit(self, series: pd.Series) -> "BinaryColumn":
        numeric = pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)
        self.levels = _label_array(label_values(series, self.name, numeric))
        if len(self.levels) != 2:
            raise DataError(
                f"column '{self.name}' has {len(self.levels)} distinct values; a binary column needs 2"
            )
        return self

    def transform(self, series: pd.Series) -> np.ndarray:
        labels = label_values(series, self.name, numeric=self.levels.dtype.kind == "f")
        codes = pd.Index(self.levels).get_indexer(labels)  # −1 for a value of neither level
        return np.where(codes < 0, 0.0, 2.0 * codes - 1.0)[:, None]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"levels": self.levels}

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray]) -> "BinaryColumn":
        return cls(name, np.asarray(arrays["levels"]))


class OneHotColumn(Column):
    kind = "onehot"

    def __init__(self, name: str, categories: np.ndarray | None = None) -> None:
        super().__init__(name)
        self.categories = categories  # (k,), float64 or unicode, sorted

    @property
    def output_names(self) -> list[str]:
        return [f"{self.name}={_label_text(c)}" for c in self.categories]

    def fit(self, series: pd.Series) -> "OneHotColumn":
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        self.categories = _label_array(label_values(series, self.name, numeric))
        return self

    def transform(self, series: pd.Series) -> np.ndarray:
        labels = label_values(series, self.name, numeric=self.categories.dtype.kind == "f")
        codes = pd.Index(self.categories).get_indexer(labels)  # −1 for an unseen category
        out = np.zeros((len(codes), len(self.categories)))
        seen = np.flatnonzero(codes >= 0)
        out[seen, codes[seen]] = 1.0  # so an unseen category stays a row of zeros
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"categories": self.categories}

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray]) -> "OneHotColumn":
        return cls(name, np.asarray(arrays["categories"]))


COLUMN_KINDS: dict[str, type[Column]] = {
    cls.kind: cls for cls in (NumericColumn, BinaryColumn, OneHotColumn)
}
