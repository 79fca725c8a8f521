"""Missing cells: what ``data.missing.*`` does with them, as scikit-learn's ``SimpleImputer`` would.

Statistics come from the training rows only and are stored with the model, so validation, test
and new rows get the same fill:

- ``data.missing.numeric``: ``median`` (default) or ``mean`` of the column's non-missing
  training values (dates: in days); ``drop_rows`` drops every row with a missing cell in a
  numeric column before the split; ``error`` refuses the file.
- ``data.missing.categorical`` (text columns and ``data.categorical``): ``category`` (default)
  makes missing a category of its own (``<missing>``); ``most_frequent`` fills the training
  mode (ties: the smallest value, as SimpleImputer); ``drop_rows`` and ``error`` as above.
- ``data.missing.indicator``: adds ``<name>_missing`` (0/1) for each numeric column that has
  missing training values (SimpleImputer's ``add_indicator=True``, ``features="missing-only"``).

Rows whose target is missing are always dropped (and counted in ``data.json``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from sweeper.data.columns import MISSING_LABEL
from sweeper.errors import ConfigError, DataError


def _most_frequent(values: np.ndarray) -> Any:
    """The most frequent value of `values` (n,); among equally frequent ones, the smallest."""
    return pd.Series(values).mode().tolist()[0]  # mode() is sorted


def _category(values: np.ndarray) -> Any:
    """Missing is a level of its own: NaN among numeric levels, ``<missing>`` among text."""
    return np.nan if values.dtype.kind == "f" else MISSING_LABEL


#: ``data.missing.numeric`` strategies that fill: name → statistic of the training values.
NUMERIC_FILLS: dict[str, Callable[[np.ndarray], float]] = {
    "median": lambda values: float(np.median(values)),
    "mean": lambda values: float(np.mean(values)),
}
#: ``data.missing.categorical`` strategies that fill: name → fill value of the training labels.
CATEGORICAL_FILLS: dict[str, Callable[[np.ndarray], Any]] = {
    "category": _category,
    "most_frequent": _most_frequent,
}
#: Strategies that do not fill, for either kind of column.
DROP_ROWS, ERROR = "drop_rows", "error"
NUMERIC_STRATEGIES = (*NUMERIC_FILLS, DROP_ROWS, ERROR)
CATEGORICAL_STRATEGIES = (*CATEGORICAL_FILLS, DROP_ROWS, ERROR)


@dataclass(frozen=True)
class Missing:
    """The ``data.missing`` settings; raises ConfigError naming the key when one is unknown."""

    numeric: str = "median"
    categorical: str = "category"
    indicator: bool = False

    def __post_init__(self) -> None:
        for key, value, allowed in (
            ("numeric", self.numeric, NUMERIC_STRATEGIES),
            ("categorical", self.categorical, CATEGORICAL_STRATEGIES),
        ):
            if value not in allowed:
                raise ConfigError(f"data.missing.{key}: unknown value {value!r}; allowed: {', '.join(allowed)}")

    @staticmethod
    def key(role: str) -> str:
        """Which setting a column of `role` follows: ``categorical``, or ``numeric`` (numbers and dates)."""
        return "categorical" if role == "categorical" else "numeric"

    def strategy(self, role: str) -> str:
        """The strategy for a column of `role` (``numeric``, ``date`` or ``categorical``)."""
        return getattr(self, self.key(role))

    def fill(self, name: str, role: str, values: np.ndarray) -> Any:
        """The fill value for column `name` of `role` from its typed training cells `values` (n,)
        (NaN / None where missing); None when the strategy does not fill (drop_rows, error)."""
        strategy = self.strategy(role)
        fills = CATEGORICAL_FILLS if self.key(role) == "categorical" else NUMERIC_FILLS
        if strategy not in fills:
            return None
        present = values[pd.notna(values)]
        if role != "categorical":
            present = present.astype(np.float64)
        if len(present) == 0 and strategy != "category":
            raise DataError(f"column {name!r} has no value in the training rows; leave it out with data.drop=[{name}]")
        return fills[strategy](present if len(present) else values)
