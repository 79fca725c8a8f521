"""The fitted map from raw DataFrame columns to network inputs and scaled targets."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sweeper.data.columns import (
    COLUMN_KINDS,
    BinaryColumn,
    Column,
    NumericColumn,
    OneHotColumn,
    check_no_missing,
    looks_numeric,
    numeric_values,
)
from sweeper.data.target import TARGET_SCALINGS, fit_target_scaling
from sweeper.errors import ConfigError, DataError

PREFIX = "data."
FORMAT_VERSION = 1
DTYPES = ("float64", "float32")


def check_dtype(dtype: str) -> np.dtype:
    """numpy dtype for a config dtype name; ConfigError listing the allowed names."""
    if str(dtype) not in DTYPES:
        raise ConfigError(f"dtype: unknown value {dtype!r}; allowed: {', '.join(DTYPES)}")
    return np.dtype(str(dtype))


def check_columns(frame: pd.DataFrame, names: Iterable[str], key: str, source: str = "the data") -> None:
    """DataError naming the config `key`, the first absent column and the available ones."""
    available = [str(c) for c in frame.columns]
    for name in names:
        if name not in frame.columns:
            listed = ", ".join(repr(c) for c in available)
            raise DataError(f"{key}: column {name!r} is not in {source}; available: {listed}")


def clean_frame(
    frame: pd.DataFrame, features: Sequence[str], categorical: Iterable[str] = ()
) -> pd.DataFrame:
    """The feature columns with one dtype each: float64 for numbers, str for labels.

    A column listed in `categorical` keeps numbers as numbers (so 4 and 4.0 are one category)
    and anything else becomes str; any other column is numeric if `looks_numeric` says so
    (and then every cell must be a finite number) or else a string column. Missing, non-numeric
    or infinite cells raise DataError naming the column and the first bad row.
    """
    categorical = set(categorical)
    cleaned = {}
    for name in features:
        series = frame[name]
        is_number = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if name in categorical and not is_number:
            check_no_missing(series, name)
            cleaned[name] = series.astype(str)
        elif name in categorical or looks_numeric(series):
            cleaned[name] = pd.Series(numeric_values(series, name), index=series.index)
        else:
            check_no_missing(series, name)
            cleaned[name] = series.astype(str)
    return pd.DataFrame(cleaned, index=frame.index)


class Preprocessor:
    """Turns raw rows into network inputs X (n, n_inputs) and targets into y (n, 1).

    `fit(train_rows)` chooses each feature column's encoder from the training rows (see
    `sweeper.data.columns`: ``numeric`` standardised, ``binary`` → ±1, ``onehot`` with the
    training categories; columns in `categorical` are always one-hot) and fits the target
    scaling y' = (y − target_shift) / target_scale (see `sweeper.data.target`). `transform` then
    encodes any rows with that fitted state, so validation, test and new rows never move it.
    """

    def __init__(
        self,
        target: str,
        features: Sequence[str],
        categorical: Iterable[str] = (),
        target_scaling: str = "standard",
    ) -> None:
        if target_scaling not in TARGET_SCALINGS:
            fit_target_scaling(target_scaling, np.zeros(1))  # raises the ConfigError
        self.target = str(target)
        self.features = tuple(str(f) for f in features)
        self.categorical = tuple(str(c) for c in categorical)
        self.target_scaling = target_scaling
        self.columns: list[Column] = []
        self.target_shift = 0.0
        self.target_scale = 1.0
        self.fitted = False
        if not self.features:
            raise DataError("data.features: no feature columns; list at least one column")
        repeated = sorted({f for f in self.features if self.features.count(f) > 1})
        if repeated:
            raise DataError(f"data.features: column {repeated[0]!r} is listed more than once")
        if self.target in self.features:
            raise DataError(f"data.features: the target column {self.target!r} cannot also be a feature")
        for name in self.categorical:
            if name not in self.features:
                raise DataError(
                    f"data.categorical: column {name!r} is not a feature; features: "
                    + ", ".join(repr(f) for f in self.features)
                )

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded inputs, in X's column order (`cut=Ideal` for one-hot outputs)."""
        return [name for column in self.columns for name in column.output_names]

    @property
    def n_inputs(self) -> int:
        return len(self.feature_names)

    def fit(self, frame: pd.DataFrame) -> "Preprocessor":
        """Fit on the training rows `frame` (raw, holding the features and the target)."""
        check_columns(frame, [self.target], "data.target")
        check_columns(frame, self.features, "data.features")
        cleaned = clean_frame(frame, self.features, self.categorical)
        self.columns = [self._column_for(cleaned[name]).fit(cleaned[name]) for name in self.features]
        y = numeric_values(frame[self.target], self.target, is_target=True)
        self.target_shift, self.target_scale = fit_target_scaling(self.target_scaling, y)
        self.fitted = True
        return self

    def _column_for(self, series: pd.Series) -> Column:
        name = str(series.name)
        if name in self.categorical:
            return OneHotColumn(name)
        two_valued = series.nunique() == 2
        if pd.api.types.is_numeric_dtype(series):
            return BinaryColumn(name) if two_valued else NumericColumn(name)
        return BinaryColumn(name) if two_valued else OneHotColumn(name)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("Preprocessor.fit (or from_arrays) must come before transform")

    def transform(self, frame: pd.DataFrame, dtype: str = "float64") -> np.ndarray:
        """Inputs X of shape (n_rows, n_inputs), C-contiguous, in `dtype`; the target column
        may be absent. DataError if a feature column is absent or holds unusable values."""
        self._require_fitted()
        out_dtype = check_dtype(dtype)
        check_columns(frame, self.features, "data.features")
        blocks = [column.transform(frame[column.name]) for column in self.columns]
        return np.ascontiguousarray(np.hstack(blocks), dtype=out_dtype)

    def transform_target(
        self, y: pd.Series | np.ndarray | Sequence[float], dtype: str = "float64"
    ) -> np.ndarray:
        """Scaled targets y' = (y − target_shift) / target_scale, shape (n, 1), in `dtype`."""
        self._require_fitted()
        out_dtype = check_dtype(dtype)
        series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).reshape(-1))
        values = numeric_values(series, self.target, is_target=True)
        scaled = (values - self.target_shift) / self.target_scale
        return np.ascontiguousarray(scaled[:, None], dtype=out_dtype)

    def inverse_target(self, y_scaled: np.ndarray) -> np.ndarray:
        """Targets in original units, y = y'·target_scale + target_shift, float64, same shape."""
        self._require_fitted()
        return np.asarray(y_scaled, dtype=np.float64) * self.target_scale + self.target_shift

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as a flat dict of numpy arrays (no object dtype, so it saves into an
        `.npz` that loads with allow_pickle=False). Every key starts with ``data.``:

        ``data.format_version``, ``data.target``, ``data.target_scaling``, ``data.target_shift``,
        ``data.target_scale``, ``data.features``, ``data.categorical``, ``data.kinds`` (one per
        feature: numeric | binary | onehot), and per feature i: ``data.column{i}.mean`` and
        ``data.column{i}.scale`` (numeric), ``data.column{i}.levels`` (binary, [−1 value, +1
        value]) or ``data.column{i}.categories`` (onehot); labels are float64 or unicode arrays.
        """
        self._require_fitted()
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "target": np.array(self.target),
            "target_scaling": np.array(self.target_scaling),
            "target_shift": np.array(self.target_shift),
            "target_scale": np.array(self.target_scale),
            "features": np.array(self.features, dtype=str),
            "categorical": np.array(self.categorical, dtype=str),
            "kinds": np.array([column.kind for column in self.columns], dtype=str),
        }
        for i, column in enumerate(self.columns):
            arrays.update({f"column{i}.{key}": value for key, value in column.arrays().items()})
        return {PREFIX + key: value for key, value in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "Preprocessor":
        """A fitted Preprocessor from `to_arrays()` output, or any mapping holding those keys
        (such as an `np.load(..., allow_pickle=False)` of a model file with other keys too)."""

        def get(key: str) -> np.ndarray:
            if PREFIX + key not in arrays:
                raise DataError(f"saved preprocessing: key {PREFIX + key!r} is missing")
            return np.asarray(arrays[PREFIX + key])

        version = int(get("format_version"))
        if version != FORMAT_VERSION:
            raise DataError(
                f"saved preprocessing: format_version {version} is not supported; allowed: {FORMAT_VERSION}"
            )
        prep = cls(
            target=str(get("target")),
            features=[str(f) for f in get("features")],
            categorical=[str(c) for c in get("categorical")],
            target_scaling=str(get("target_scaling")),
        )
        prep.target_shift = float(get("target_shift"))
        prep.target_scale = float(get("target_scale"))
        kinds = [str(k) for k in get("kinds")]
        prep.columns = []
        for i, (name, kind) in enumerate(zip(prep.features, kinds)):
            stem = f"{PREFIX}column{i}."
            state = {key[len(stem) :]: np.asarray(arrays[key]) for key in arrays if key.startswith(stem)}
            if kind not in COLUMN_KINDS:
                raise DataError(
                    f"saved preprocessing: column {name!r} has unknown kind {kind!r}; "
                    f"allowed: {', '.join(COLUMN_KINDS)}"
                )
            prep.columns.append(COLUMN_KINDS[kind].from_arrays(name, state))
        prep.fitted = True
        return prep

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name}:{c.kind}" for c in self.columns) if self.fitted else "unfitted"
        return f"Preprocessor(target={self.target!r}, target_scaling={self.target_scaling!r}, {kinds})"
