"""One encoder per kind of input column, and the cell conversions they share.

Kinds (the config name is the registry key in `COLUMN_KINDS`):

- ``numeric``: z = (x − μ) / σ with μ and σ = sqrt(mean((x − μ)²)) of the (imputed) training
  values; σ = 1 when the column is constant on the training rows, so it encodes as 0, never NaN.
- ``date``: an ISO date or date-time text (``1970-01-02``, ``2021-03-04T10:00``) becomes the
  number of days since 1970-01-01 (UTC; fractional for times), then encodes as ``numeric``.
- ``binary``: a column with exactly two distinct training values (0/1, no/yes, false/true,
  any two strings). The smaller value (numerically, or lexicographically for strings) → −1,
  the larger → +1, so no → −1, yes → +1, false → −1, true → +1, 0 → −1, 1 → +1.
  A value seen in neither level (only possible on new rows) encodes as 0.
- ``onehot``: one output per training category, sorted; a category not seen in the training
  rows encodes as all zeros. With more than ``max_categories`` training categories, the
  ``max_categories − 1`` most frequent are kept and the rest share one ``<other>`` output
  (scikit-learn's ``OneHotEncoder(max_categories=k, handle_unknown="infrequent_if_exist")``:
  ties in frequency keep the later category in sorted order; unseen categories go to
  ``<other>`` too).

Every kind takes a ``fill``, the value a missing cell gets before encoding (the imputed
statistic of `sweeper.data.missing`, fitted on the training rows): with none, a missing cell is a
DataError. ``indicator=True`` appends a 0/1 output ``<name>_missing`` (1 where the cell was
missing), as scikit-learn's ``SimpleImputer(add_indicator=True)`` does.

Row numbers in messages count data rows from 1 (the first line under the header is row 1).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from sweeper.errors import DataError, shown

#: The label of a missing cell under ``data.missing.categorical=category`` (text columns).
MISSING_LABEL = "<missing>"
#: The label of the categories grouped by ``data.max_categories``.
OTHER_LABEL = "<other>"

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _row(mask: np.ndarray) -> int:
    """1-based position of the first True in `mask`."""
    return int(np.flatnonzero(mask)[0]) + 1


def subject(name: str, is_target: bool = False) -> str:
    return f"target column '{name}'" if is_target else f"column '{name}'"


def looks_numeric(series: pd.Series) -> bool:
    """True for a numeric dtype, or text of which at least half the non-missing cells parse
    as numbers: such a column is numeric with typos, not a string column to one-hot encode."""
    if is_numeric_dtype(series):
        return True
    counts = series.value_counts()  # parse each distinct text once, not every cell
    if counts.sum() == 0:
        return False
    parses = pd.to_numeric(counts.index.to_series(), errors="coerce").notna().to_numpy()
    return bool(counts.to_numpy()[parses].sum() >= 0.5 * counts.sum())


def looks_like_dates(series: pd.Series) -> bool:
    """True when every non-missing cell is an ISO date or date-time (``2021-03-04[T10:00]``)."""
    if is_numeric_dtype(series):
        return False
    distinct = series.dropna().unique()
    return len(distinct) > 0 and all(isinstance(v, str) and _ISO_DATE.match(v.strip()) for v in distinct)


#: The largest magnitude a number may have, in a feature or the target, in training and in
#: prediction. Squares of differences of such numbers summed over 10^10 rows stay finite in
#: float64 (4·10^200·10^10 < 1.8·10^308), so a column's σ, the loss and the RMSE in the target's
#: own units cannot overflow; a larger number is refused as an infinite one is.
LARGEST = 1e100
#: The farthest, in training standard deviations from the training mean, a numeric feature of
#: other rows (validation, test, predicted) may be: a cell 10^6 σ out is a typo or another unit,
#: and the network's output for it would be extrapolated past what float arithmetic holds.
FARTHEST = 1e6
#: What to do about a number beyond ±`LARGEST`.
TOO_LARGE_HINT = f"every number must be within ±{LARGEST:g}: change the column's unit, or fix the file"


def numbers_with_bad_cells(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(values, bad): float64 values of shape (n,) with NaN where a cell is missing or not a
    number, and the mask of cells that are present but not a number within ±`LARGEST`."""
    if is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series.map(_bool_as_number), errors="coerce").to_numpy(dtype=np.float64)
    bad = (np.isnan(values) & series.notna().to_numpy()) | (np.abs(values) > LARGEST)
    return np.where(bad, np.nan, values), bad


def _bool_as_number(value: Any) -> Any:
    return float(value) if isinstance(value, (bool, np.bool_)) else value


def bad_cells_message(series: pd.Series, bad: np.ndarray, name: str, is_target: bool = False,
                      text_hint: str = "") -> str:
    """One line naming the column, how many cells are not numbers within ±`LARGEST` and the
    first, then ``text_hint`` (what to do about text) or, when the first is a number too large,
    `TOO_LARGE_HINT`."""
    first = _row(bad)
    value = series.iloc[first - 1]
    number = float(pd.to_numeric(pd.Series([_bool_as_number(value)]), errors="coerce").iloc[0])
    if np.isnan(number):
        what, hint = "non-numeric", text_hint
    elif np.isinf(number):
        what, hint, value = "infinite", text_hint, number
    else:
        what, hint, value = f"out-of-range (beyond ±{LARGEST:g})", f"; {TOO_LARGE_HINT}", number
    first_cell = f"first: {shown(value)} in row {first}"
    return f"{subject(name, is_target)} has {int(bad.sum())} {what} value(s) ({first_cell}){hint}"


#: What to do about text in a numeric column, or in the target.
TEXT_IN_NUMBERS = "list it in data.categorical to one-hot encode it, or fix the file"
TEXT_IN_TARGET = "the target must be numeric"


def numeric_cells(series: pd.Series, name: str, is_target: bool = False) -> np.ndarray:
    """The column as float64 of shape (n,), NaN where missing; DataError on a cell that is
    present but not a number within ±`LARGEST`, naming the column, the first bad value and its row."""
    values, bad = numbers_with_bad_cells(series)
    if bad.any():
        hint = TEXT_IN_TARGET if is_target else TEXT_IN_NUMBERS
        raise DataError(bad_cells_message(series, bad, name, is_target, f"; {hint}"))
    return values


def date_cells(series: pd.Series, name: str) -> np.ndarray:
    """ISO dates as float64 days since 1970-01-01 UTC, shape (n,), NaN where missing;
    DataError naming the column and the first cell that is not an ISO date."""
    text = series.astype(object).where(series.notna(), None)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    bad = parsed.isna().to_numpy() & series.notna().to_numpy()
    if bad.any():
        first = _row(bad)
        raise DataError(
            f"{subject(name)} is a date column but row {first} holds {shown(series.iloc[first - 1])}; "
            "use ISO dates such as 2021-03-04"
        )
    return ((parsed - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def label_cells(series: pd.Series, numeric: bool) -> np.ndarray:
    """Cells as labels to compare with fitted levels, shape (n,): float64 with NaN for missing
    when the levels are numbers (so 4 and 4.0 match), else str objects with None for missing."""
    if numeric:
        values, bad = numbers_with_bad_cells(series)
        if bad.any():
            raise DataError(bad_cells_message(series, bad, str(series.name), text_hint="; its levels are numbers"))
        return values
    missing = series.isna().to_numpy()
    out = series.astype(str).to_numpy(dtype=object)
    out[missing] = None
    return out


def fill_cells(values: np.ndarray, missing: np.ndarray, fill: Any) -> np.ndarray:
    """`values` with the cells of mask `missing` set to `fill` (a copy only when one is)."""
    if not missing.any():
        return values
    values = values.copy()
    values[missing] = fill
    return values


def label_array(values: np.ndarray) -> np.ndarray:
    """Sorted distinct labels as float64 or unicode (NaN last): storable without pickle."""
    levels = pd.unique(values)  # hash then sort the few distinct values
    return np.sort(levels.astype(str if values.dtype == object else np.float64))


def label_text(level: object) -> str:
    """A level as shown in output names: 3.0 → ``3``, NaN → ``<missing>``."""
    if isinstance(level, (float, np.floating)):
        if np.isnan(level):
            return MISSING_LABEL
        if float(level).is_integer():
            return str(int(level))
    return str(level)


class Column:
    """Base of the column encoders: `fit_cells` on typed training cells, `transform` any cells.

    ``fill`` replaces a missing cell before encoding (None: a missing cell is a DataError);
    ``indicator`` appends ``<name>_missing``. `arrays()` / `from_arrays()` give the fitted state
    as numpy arrays without object dtype. Subclasses implement `cells` (raw → typed),
    `_fit` and `_encode` (on typed, filled cells), and `_arrays` / `_restore` (their own state).
    """

    kind: ClassVar[str]

    def __init__(self, name: str, fill: Any = None, indicator: bool = False) -> None:
        self.name = name
        self.fill = fill
        self.indicator = bool(indicator)

    @property
    def output_names(self) -> list[str]:
        return self._names() + ([f"{self.name}_missing"] if self.indicator else [])

    def _names(self) -> list[str]:
        return [self.name]

    def _filled(self, values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        if missing.any() and self.fill is None:
            raise DataError(
                f"column '{self.name}' has {int(missing.sum())} missing value(s) (first in row "
                f"{_row(missing)}) and the model has no value to fill them with"
            )
        return fill_cells(values, missing, self.fill)

    def fit_cells(self, values: np.ndarray) -> "Column":
        """`fit` on cells already typed by `cells` (NaN / None where missing)."""
        self._fit(self._filled(values, pd.isna(values)))
        return self

    def transform(self, series: pd.Series) -> np.ndarray:
        """Encoded cells, shape (n, len(output_names)), float64."""
        values = self.cells(series)
        missing = pd.isna(values)
        out = self._encode(self._filled(values, missing))
        if self.indicator:
            out = np.hstack([out, missing[:, None].astype(np.float64)])
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """``fill`` (empty when there is none), ``indicator`` and the kind's own state."""
        fill = np.array([], dtype=np.float64) if self.fill is None else np.array(self.fill)
        return {"fill": fill, "indicator": np.array(self.indicator)} | self._arrays()

    @classmethod
    def from_arrays(cls, name: str, arrays: Mapping[str, np.ndarray]) -> "Column":
        fill = arrays.get("fill")
        fill = None if fill is None or fill.size == 0 else fill.item()
        column = cls(name, fill=fill, indicator=bool(arrays.get("indicator", False)))
        column._restore(arrays)
        return column

    def describe(self) -> dict[str, Any]:
        """JSON-ready: ``kind``, ``fill`` (null when none), ``indicator`` and kind-specific facts."""
        fill = self.fill
        if isinstance(fill, float) and np.isnan(fill):
            fill = MISSING_LABEL
        return {"kind": self.kind, "fill": fill, "indicator": self.indicator}


class NumericColumn(Column):
    kind = "numeric"
    mean: float  # μ and σ of the (imputed) training values, set by fit
    scale: float

    def cells(self, series: pd.Series) -> np.ndarray:
        return numeric_cells(series, self.name)

    def _fit(self, values: np.ndarray) -> None:
        if values.min() == values.max():
            # A computed σ of identical floats can be ~1e-17 rather than 0; treat it as 0.
            self.mean, self.scale = float(values[0]), 1.0
        else:
            self.mean = float(values.mean())
            self.scale = float(values.std())

    def _encode(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.scale)[:, None]

    def transform(self, series: pd.Series) -> np.ndarray:
        """`Column.transform`; DataError naming the column and the first row (its number in
        the file when ``series`` keeps the file's index) that encodes beyond ±`FARTHEST`."""
        out = super().transform(series)
        far = np.abs(out[:, 0]) > FARTHEST
        if far.any():
            position = int(np.flatnonzero(far)[0])
            label, cell = series.index[position], series.iloc[position]
            row = int(label) + 1 if isinstance(label, (int, np.integer)) else position + 1
            raise DataError(
                f"{subject(self.name)} has {int(far.sum())} value(s) more than {FARTHEST:g} training standard "
                f"deviations from the training mean {self.mean:.6g} (first: {shown(cell.item() if isinstance(cell, np.generic) else cell)} in row "
                f"{row}); the network's output would overflow: change the column's unit, or fix the file"
            )
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"mean": np.array(self.mean), "scale": np.array(self.scale)}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.mean, self.scale = float(arrays["mean"]), float(arrays["scale"])


class DateColumn(NumericColumn):
    kind = "date"

    def cells(self, series: pd.Series) -> np.ndarray:
        return date_cells(series, self.name)

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"converted": "days since 1970-01-01"}


class BinaryColumn(Column):
    kind = "binary"
    levels: np.ndarray  # (2,), sorted: levels[0] → −1, levels[1] → +1; numbers or text

    def cells(self, series: pd.Series) -> np.ndarray:
        return label_cells(series, numeric=self.levels.dtype.kind == "f")

    def _fit(self, values: np.ndarray) -> None:
        self.levels = label_array(values)
        if len(self.levels) != 2:
            raise DataError(
                f"column '{self.name}' has {len(self.levels)} distinct values; a binary column needs 2"
            )

    def _encode(self, values: np.ndarray) -> np.ndarray:
        codes = pd.Index(self.levels).get_indexer(values)  # −1 for a value of neither level
        return np.where(codes < 0, 0.0, 2.0 * codes - 1.0)[:, None]

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"levels": self.levels}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.levels = np.asarray(arrays["levels"])

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"levels": [label_text(v) for v in self.levels]}


class OneHotColumn(Column):
    kind = "onehot"

    def __init__(self, name: str, fill: Any = None, indicator: bool = False,
                 max_categories: int | None = None) -> None:
        super().__init__(name, fill, indicator)
        self.max_categories = max_categories
        self.categories: np.ndarray | None = None  # (k,), sorted: the kept training categories
        self.n_grouped = 0  # training categories past max_categories, sharing one <other> output

    @property
    def other(self) -> bool:
        """Whether an ``<other>`` output exists (some training categories were grouped)."""
        return self.n_grouped > 0

    def _names(self) -> list[str]:
        names = [f"{self.name}={label_text(c)}" for c in self.categories]
        return names + ([f"{self.name}={OTHER_LABEL}"] if self.other else [])

    def cells(self, series: pd.Series) -> np.ndarray:
        return label_cells(series, numeric=self.categories.dtype.kind == "f")

    def _fit(self, values: np.ndarray) -> None:
        categories = label_array(values)
        k = self.max_categories
        if k is not None and len(categories) > k:
            counts = pd.Series(values).value_counts(dropna=False).reindex(categories).reset_index(drop=True)
            # The k − 1 most frequent; a tie keeps the later of the sorted categories, as OneHotEncoder does.
            kept = np.sort(counts.nlargest(k - 1, keep="last").index)
            self.n_grouped = len(categories) - len(kept)
            categories = categories[kept]
        self.categories = categories

    def _encode(self, values: np.ndarray) -> np.ndarray:
        codes = pd.Index(self.categories).get_indexer(values)  # −1 for an unseen category
        width = len(self.categories) + self.other
        out = np.zeros((len(codes), width))
        if self.other:
            codes = np.where(codes < 0, width - 1, codes)
        seen = np.flatnonzero(codes >= 0)
        out[seen, codes[seen]] = 1.0  # so without <other> an unseen category stays all zeros
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"categories": self.categories, "grouped": np.array(self.n_grouped)}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.categories = np.asarray(arrays["categories"])
        self.n_grouped = int(arrays.get("grouped", 0))

    def describe(self) -> dict[str, Any]:
        facts = {"categories": len(self.categories)}
        if self.other:
            facts["grouped_as_other"] = self.n_grouped
        return super().describe() | facts


COLUMN_KINDS: dict[str, type[Column]] = {
    cls.kind: cls for cls in (NumericColumn, DateColumn, BinaryColumn, OneHotColumn)
}
