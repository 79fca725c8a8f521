"""The fitted map from raw DataFrame columns to network inputs and scaled targets."""

from __future__ import annotations

import numbers
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from sweeper.data.columns import (
    COLUMN_KINDS,
    BinaryColumn,
    Column,
    DateColumn,
    NumericColumn,
    OneHotColumn,
    date_cells,
    fill_cells,
    label_array,
    label_cells,
    numeric_cells,
)
from sweeper.data.missing import Missing
from sweeper.data.survey import column_role
from sweeper.data.target import Labels, fit_target_scaling, label_cells_of_target, target_scaling_of, warp_target
from sweeper.errors import ConfigError, DataError

PREFIX = "data."
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
DTYPES = ("float64", "float32")
DEFAULT_MAX_CATEGORIES = 50


def check_dtype(dtype: str) -> np.dtype:
    """numpy dtype for a config dtype name; ConfigError listing the allowed names."""
    if str(dtype) not in DTYPES:
        raise ConfigError(f"dtype: unknown value {dtype!r}; allowed: {', '.join(DTYPES)}")
    return np.dtype(str(dtype))


def check_max_categories(value: object) -> int:
    """``data.max_categories`` as an int; ConfigError unless it is an integer >= 2."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
        raise ConfigError(f"data.max_categories: {value!r} is out of range; allowed: an integer >= 2")
    return int(value)


def check_columns(frame: pd.DataFrame, names: Iterable[str], key: str, source: str = "the data") -> None:
    """DataError naming the config `key`, every absent column and the available ones."""
    absent = [name for name in names if name not in frame.columns]
    if absent:
        listed = ", ".join(repr(str(c)) for c in frame.columns)
        which = f"column {absent[0]!r} is" if len(absent) == 1 else "columns " + ", ".join(map(repr, absent)) + " are"
        raise DataError(f"{key}: {which} not in {source}; available: {listed}")


def typed_cells(series: pd.Series, role: str) -> np.ndarray:
    """The cells of a column of `role` as its encoder reads them (NaN / None where missing)."""
    name = str(series.name)
    if role == "date":
        return date_cells(series, name)
    if role == "numeric":
        return numeric_cells(series, name)
    return label_cells(series, numeric=is_numeric_dtype(series))


class Preprocessor:
    """Turns raw rows into network inputs X (n, n_inputs) and targets into y (n, 1).

    `fit(train_rows)` gives each feature its role (`sweeper.data.survey.column_role`, unless the
    caller passes the roles it found on the whole file), its missing-cell fill from the training
    rows (`sweeper.data.missing`) and then its encoder on the filled training cells (see
    `sweeper.data.columns`: numeric and date columns standardised, two-valued columns → ±1, text
    one-hot with at most `max_categories` outputs; columns in `categorical` are always one-hot),
    and fits the target scaling y' = (g(y) − target_shift) / target_scale (`sweeper.data.target`;
    g = ln for ``log``, else the identity),
    or, for ``task="classification"``, the classes (`sweeper.data.target.Labels`): targets are
    then one-hot rows (n, K), never scaled. `transform` then encodes any rows with that fitted
    state, so validation, test and new rows never move it.
    """

    def __init__(
        self,
        target: str,
        features: Sequence[str],
        categorical: Iterable[str] = (),
        target_scaling: str = "standard",
        missing: Missing = Missing(),
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        na_values: Iterable[str] = (),
        task: str = "regression",
    ) -> None:
        target_scaling_of(target_scaling)  # a ConfigError for an unknown name
        self.target = str(target)
        self.features = tuple(str(f) for f in features)
        self.categorical = tuple(str(c) for c in categorical)
        self.target_scaling = target_scaling
        self.missing = missing
        self.max_categories = check_max_categories(max_categories)
        self.na_values = tuple(str(v) for v in na_values)  # text read as missing (data.na_values)
        self.columns: list[Column] = []
        self.roles: dict[str, str] = {}  # feature → numeric | date | categorical
        self.target_shift = 0.0
        self.target_scale = 1.0
        self.task = str(task)  # regression | classification (data.task resolved)
        self.labels: Labels | None = None  # the classes, for classification
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
    def classifies(self) -> bool:
        """Whether the target is a class (``task="classification"``)."""
        return self.task == "classification"

    def fit(self, frame: pd.DataFrame, roles: Mapping[str, str] | None = None) -> "Preprocessor":
        """Fit on the training rows `frame` (raw, holding the features and the target).

        `roles` (feature → ``numeric`` | ``date`` | ``categorical``) defaults to what each
        column of `frame` looks like. The target must have no missing cell here.
        """
        check_columns(frame, [self.target], "data.target")
        check_columns(frame, self.features, "data.features")
        listed = set(self.categorical)
        self.columns = []
        for name in self.features:
            series = frame[name]
            role = roles[name] if roles is not None else column_role(series, name in listed)
            self.roles[name] = role
            self.columns.append(self._column_for(name, role, typed_cells(series, role)))
        column = frame[self.target]
        y = label_cells_of_target(column) if self.classifies else numeric_cells(column, self.target, is_target=True)
        if pd.isna(y).any():
            raise DataError(f"target column '{self.target}' has missing values in the training rows")
        if self.classifies:
            self.labels = Labels(label_array(y))
        else:
            self.target_shift, self.target_scale = fit_target_scaling(self.target_scaling, y, self.target)
        self.fitted = True
        return self

    def _column_for(self, name: str, role: str, cells: np.ndarray) -> Column:
        """The encoder of one feature, fitted on its typed training `cells`."""
        missing = pd.isna(cells)
        fill = self.missing.fill(name, role, cells)
        indicator = self.missing.indicator and role != "categorical" and bool(missing.any())
        filled = cells if fill is None else fill_cells(cells, missing, fill)
        two_valued = len(pd.unique(filled)) == 2
        if role == "date":
            column: Column = DateColumn(name, fill, indicator)
        elif two_valued and name not in self.categorical:
            column = BinaryColumn(name, fill, indicator)
        elif role == "numeric":
            column = NumericColumn(name, fill, indicator)
        else:
            column = OneHotColumn(name, fill, indicator, max_categories=self.max_categories)
        return column.fit_cells(cells)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("Preprocessor.fit (or from_arrays) must come before transform")

    def transform(self, frame: pd.DataFrame, dtype: str = "float64") -> np.ndarray:
        """Inputs X of shape (n_rows, n_inputs), C-contiguous, in `dtype`; the target column
        may be absent. DataError if a feature column is absent or holds unusable values."""
        self._require_fitted()
        out_dtype = check_dtype(dtype)
        check_columns(frame, self.features, "input", "the rows to encode")
        cells = {column.name: self._cells(frame[column.name]) for column in self.columns}
        self._check_unfillable(cells)
        if not len(frame):
            return np.zeros((0, len(self.feature_names)), dtype=out_dtype)
        blocks = [column.transform(cells[column.name]) for column in self.columns]
        return np.ascontiguousarray(np.hstack(blocks), dtype=out_dtype)

    def _check_unfillable(self, cells: Mapping[str, pd.Series]) -> None:
        """DataError naming every column with missing cells this model has no fill for (it was
        trained with a ``drop_rows`` or ``error`` strategy), and the strategy."""
        unfillable = [(c.name, int(cells[c.name].isna().sum())) for c in self.columns
                      if c.fill is None and cells[c.name].isna().any()]
        if unfillable:
            named = ", ".join(f"'{name}' ({count})" for name, count in unfillable)
            roles = [self.roles.get(name, "numeric") for name, _ in unfillable]
            strategies = sorted({f"data.missing.{Missing.key(role)}={self.missing.strategy(role)}" for role in roles})
            raise DataError(
                f"input: missing cells in {named}, and this model (trained with {', '.join(strategies)}) has no "
                "value to fill them with; fill or drop those rows"
            )

    def _cells(self, series: pd.Series) -> pd.Series:
        """A raw column with the ``data.na_values`` tokens as missing cells (a CSV read with
        them has none left; rows handed to a model may)."""
        if not self.na_values or is_numeric_dtype(series):
            return series
        return series.where(~series.astype(str).str.strip().isin(self.na_values))

    def transform_target(
        self, y: pd.Series | np.ndarray | Sequence[float], dtype: str = "float64", what: str = "rows"
    ) -> np.ndarray:
        """Scaled targets y' = (g(y) − target_shift) / target_scale, shape (n, 1), in `dtype`, g = ln
        for ``log`` (DataError naming how many ``what`` rows are ≤ 0), else the identity; for
        classification one-hot rows (n, K) (DataError naming a class the training rows lack and
        ``what`` rows hold it)."""
        self._require_fitted()
        out_dtype = check_dtype(dtype)
        series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).reshape(-1))
        if self.classifies:
            return self.labels.one_hot(self.class_codes(series, what), out_dtype.name)
        values = warp_target(self.target_scaling, numeric_cells(series, self.target, is_target=True), self.target, what)
        scaled = (values - self.target_shift) / self.target_scale
        return np.ascontiguousarray(scaled[:, None], dtype=out_dtype)

    def class_codes(self, y: pd.Series | np.ndarray | Sequence, what: str = "rows") -> np.ndarray:
        """Class codes (n,) int64 of raw target cells (classification)."""
        series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).reshape(-1))
        return self.labels.codes(label_cells_of_target(series), what)

    def inverse_target(self, y_scaled: np.ndarray) -> np.ndarray:
        """Targets in original units, y = g⁻¹(y'·target_scale + target_shift), float64, same shape;
        g⁻¹ = exp for ``log`` (its exponent clipped so a huge y' gives a finite y), else the identity."""
        self._require_fitted()
        unwarp = target_scaling_of(self.target_scaling).unwarp
        return unwarp(np.asarray(y_scaled, dtype=np.float64) * self.target_scale + self.target_shift)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as a flat dict of numpy arrays (no object dtype, so it saves into an
        `.npz` that loads with allow_pickle=False). Every key starts with ``data.``:

        ``data.format_version``, ``data.target``, ``data.target_scaling``, ``data.target_shift``,
        ``data.target_scale``, ``data.task`` (regression | classification; absent before version
        3: regression), ``data.classes`` (classification: the K classes, float64 or unicode, in
        code order), ``data.features``, ``data.categorical``, ``data.missing_numeric``,
        ``data.missing_categorical``, ``data.missing_indicator``, ``data.max_categories``, ``data.na_values``,
        ``data.kinds`` (one per feature: numeric | date | binary | onehot), ``data.roles`` (one
        per feature: numeric | date | categorical, which decides its missing-value strategy),
        and per feature i:
        ``data.column{i}.fill`` (the imputed value; empty when missing cells are refused),
        ``data.column{i}.indicator``, and ``data.column{i}.mean`` and ``data.column{i}.scale``
        (numeric, date), ``data.column{i}.levels`` (binary, [−1 value, +1 value]) or
        ``data.column{i}.categories`` and ``data.column{i}.grouped`` (onehot: how many training
        categories share the ``<other>`` output, 0 for none); labels are float64
        or unicode arrays.
        """
        self._require_fitted()
        arrays = {
            "format_version": np.array(FORMAT_VERSION),
            "target": np.array(self.target),
            "target_scaling": np.array(self.target_scaling),
            "target_shift": np.array(self.target_shift),
            "target_scale": np.array(self.target_scale),
            "task": np.array(self.task),
            "features": np.array(self.features, dtype=str),
            "categorical": np.array(self.categorical, dtype=str),
            "missing_numeric": np.array(self.missing.numeric),
            "missing_categorical": np.array(self.missing.categorical),
            "missing_indicator": np.array(self.missing.indicator),
            "max_categories": np.array(self.max_categories),
            "na_values": np.array(self.na_values, dtype=str),
            "kinds": np.array([column.kind for column in self.columns], dtype=str),
            "roles": np.array([self.roles[name] for name in self.features], dtype=str),
        }
        if self.labels is not None:
            arrays["classes"] = self.labels.classes
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

        def get_or(key: str, default: object) -> object:
            return arrays[PREFIX + key].item() if PREFIX + key in arrays else default

        version = int(get("format_version"))
        if version not in READABLE_VERSIONS:
            raise DataError(
                f"saved preprocessing: format_version {version} is not supported; "
                f"allowed: {', '.join(map(str, READABLE_VERSIONS))}"
            )
        # Version 1 (before missing values were handled) refused every missing cell.
        prep = cls(
            target=str(get("target")),
            features=[str(f) for f in get("features")],
            categorical=[str(c) for c in get("categorical")],
            target_scaling=str(get("target_scaling")),
            missing=Missing(
                numeric=str(get_or("missing_numeric", "error")),
                categorical=str(get_or("missing_categorical", "error")),
                indicator=bool(get_or("missing_indicator", False)),
            ),
            max_categories=int(get_or("max_categories", DEFAULT_MAX_CATEGORIES)),
            na_values=[str(v) for v in arrays.get(PREFIX + "na_values", [])],
            task=str(get_or("task", "regression")),
        )
        if prep.classifies:
            prep.labels = Labels(get("classes"))
        prep.target_shift = float(get("target_shift"))
        prep.target_scale = float(get("target_scale"))
        kinds = [str(k) for k in get("kinds")]
        if PREFIX + "roles" in arrays:
            prep.roles = dict(zip(prep.features, (str(r) for r in arrays[PREFIX + "roles"])))
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

    def describe(self) -> dict[str, dict]:
        """Per feature, JSON-ready: its encoder's ``kind``, ``fill``, ``indicator`` and facts such
        as ``levels``, ``categories``, ``grouped_as_other`` or ``converted`` (see `Column.describe`)."""
        self._require_fitted()
        described = {}
        for column in self.columns:
            facts = column.describe()
            role = self.roles.get(column.name)
            if facts["fill"] is not None and role:
                facts["strategy"] = self.missing.strategy(role)
            described[column.name] = facts
        return described

    def __repr__(self) -> str:
        kinds = ", ".join(f"{c.name}:{c.kind}" for c in self.columns) if self.fitted else "unfitted"
        target = f"classes={self.labels.names()}" if self.labels is not None else f"target_scaling={self.target_scaling!r}"
        return f"Preprocessor(target={self.target!r}, {target}, {kinds})"
