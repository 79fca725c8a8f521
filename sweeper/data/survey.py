"""The whole-file check before any split or fit: each column's role, the rows kept, and every
problem of the file in one message.

A column's role decides its encoder and its missing-value strategy:
``numeric`` (numbers, or text of which at least half parses as numbers: a numeric column with
typos), ``date`` (every cell an ISO date) or ``categorical`` (any other text, and every column in
``data.categorical``). A text column with more than ``max_categories`` distinct values that are
at least half as many as its rows is an identifier or free text (a name, an id, a comment): it
is refused, naming ``data.drop``, rather than one-hot encoded into hundreds of inputs.

Rows are dropped before the split: always where the target is missing, and where a numeric or
categorical cell is missing when that kind's strategy is ``drop_rows``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from sweeper.data.columns import (
    TEXT_IN_NUMBERS,
    TEXT_IN_TARGET,
    bad_cells_message,
    looks_like_dates,
    looks_numeric,
    numbers_with_bad_cells,
)
from sweeper.data.missing import DROP_ROWS, ERROR, Missing
from sweeper.data.target import MAX_CLASSES, label_cells_of_target
from sweeper.errors import DataError

#: A text column is free text when its distinct values are at least this share of its cells.
IDENTIFIER_SHARE = 0.5


@dataclass(frozen=True)
class Survey:
    """What the check found: ``roles`` (feature → role), ``keep`` (sorted 0-based file rows
    that stay, shape (n_kept,)), ``dropped_rows`` (reason → count), ``missing`` (feature →
    missing cells among the kept rows) and the target's values, shape (n_rows,): float64 for
    regression, class labels (`label_cells_of_target`) for classification."""

    roles: dict[str, str]
    keep: np.ndarray
    dropped_rows: dict[str, int]
    missing: dict[str, int]
    target_values: np.ndarray = field(repr=False)


def column_role(series: pd.Series, categorical: bool) -> str:
    """``categorical`` if listed so, else ``numeric``, ``date`` or ``categorical`` by content."""
    if categorical:
        return "categorical"
    if looks_numeric(series):
        return "numeric"
    return "date" if looks_like_dates(series) else "categorical"


def _raise_if_any(clauses: list[str], columns: dict[str, list[tuple[str, str]]], source: str) -> None:
    """One DataError of the file's problems: the single `clauses`, then one clause per kind of
    column problem (`columns`: kind → [(name, detail)]) naming every column it hits."""
    for key, others in (("numeric", "median, mean or drop_rows"),
                        ("categorical", "category, most_frequent or drop_rows")):
        if columns.get(f"missing {key}"):
            clauses.append(
                f"{_columns(columns[f'missing {key}'], 'has', 'have')} missing values and "
                f"data.missing.{key}=error; set data.missing.{key} to {others}"
            )
    if columns.get("empty"):
        clauses.append(f"{_columns(columns['empty'], 'is', 'are')} empty; leave out with {_drop(columns['empty'])}")
    if columns.get("identifier"):
        clauses.append(
            f"{_columns(columns['identifier'], 'looks', 'look')} like identifiers or free text, "
            f"not categories; leave out with {_drop(columns['identifier'])} (or list in "
            "data.categorical to group all but the most frequent as <other>)"
        )
    if clauses:
        raise DataError(f"data.path: {source}: " + "; ".join(clauses))


def _columns(entries: list[tuple[str, str]], verb: str, verbs: str) -> str:
    """``column 'a' (3) has`` or ``columns 'a' (3), 'b' (1) have``."""
    named = ", ".join(f"'{name}'" + (f" ({detail})" if detail else "") for name, detail in entries)
    return f"column {named} {verb}" if len(entries) == 1 else f"columns {named} {verbs}"


def _drop(entries: list[tuple[str, str]]) -> str:
    return f"data.drop=[{','.join(name for name, _ in entries)}]"


def survey(
    frame: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    missing: Missing,
    max_categories: int,
    source: str,
    task: str = "regression",
) -> Survey:
    """Check every used cell of `frame` (the whole file) and decide roles and kept rows.

    Raises one DataError listing every problem: a target that is not numeric (regression), has no
    value or one value (class) only, or (classification) so many classes that it is a number; feature cells that are not finite numbers; empty columns; missing cells under
    an ``error`` strategy; free-text columns; no row left after dropping.
    """
    problems: list[str] = []
    column_problems: dict[str, list[tuple[str, str]]] = defaultdict(list)  # kind → [(name, detail)]
    n_rows = len(frame)
    if task == "classification":
        target_values = label_cells_of_target(frame[target])
        keep = ~pd.isna(target_values)
    else:
        target_values, bad = numbers_with_bad_cells(frame[target])
        if bad.any():
            problems.append(bad_cells_message(frame[target], bad, target, True,
                                           f"; {TEXT_IN_TARGET}; for classes, set data.task=classification"))
        keep = ~np.isnan(target_values) | bad
    dropped = {"target_missing": int(n_rows - keep.sum())}

    roles: dict[str, str] = {}
    missing_cells: dict[str, np.ndarray] = {}
    listed = set(categorical)
    for name in features:
        series = frame[name]
        present = series.notna().to_numpy()
        if not present.any():
            column_problems["empty"].append((name, ""))
            continue
        role = column_role(series, name in listed)
        roles[name] = role
        if role == "numeric":
            _, bad = numbers_with_bad_cells(series)
            if bad.any():
                problems.append(bad_cells_message(series, bad, name, text_hint=_text_in_numbers_hint(series, bad)))
        if role == "categorical" and name not in listed and not is_numeric_dtype(series):
            distinct = series.nunique()
            if distinct > max_categories and distinct >= IDENTIFIER_SHARE * present.sum():
                column_problems["identifier"].append((name, f"{distinct} distinct values in {int(present.sum())} rows"))
        missing_cells[name] = ~present

    for name, absent in missing_cells.items():
        count = int((absent & keep).sum())
        if count and missing.strategy(roles[name]) == ERROR:
            column_problems[f"missing {Missing.key(roles[name])}"].append((name, str(count)))
    for kind in ("numeric", "categorical"):
        if getattr(missing, kind) == DROP_ROWS:
            of_kind = [name for name in missing_cells if Missing.key(roles[name]) == kind]
            absent = frame[of_kind].isna().any(axis=1).to_numpy()
            dropped[f"{kind}_missing"] = int((absent & keep).sum())
            keep &= ~absent
    _raise_if_any(problems, column_problems, source)

    kept_target = target_values[keep]
    if len(kept_target) == 0:
        counts = ", ".join(f"{count} with {reason.replace('_', ' ')}" for reason, count in dropped.items() if count)
        raise DataError(f"data.path: {source}: no row is left after dropping rows with missing cells ({counts})")
    if task == "classification":
        _check_classes(kept_target, target)
    elif kept_target.min() == kept_target.max():
        raise DataError(
            f"data.target: column '{target}' has the same value ({kept_target[0]:g}) in every row; "
            "there is nothing to learn"
        )
    return Survey(
        roles=roles,
        keep=np.flatnonzero(keep),
        dropped_rows={reason: count for reason, count in dropped.items() if count},
        missing={name: int((cells & keep).sum()) for name, cells in missing_cells.items()},
        target_values=target_values,
    )


def _check_classes(labels: np.ndarray, target: str) -> None:
    """DataError unless the kept target ``labels`` hold 2 to `MAX_CLASSES` classes (or more, when
    they are under half the rows: many classes with many rows each)."""
    classes = pd.unique(labels)
    if len(classes) < 2:
        raise DataError(
            f"data.target: column '{target}' has one class ({classes[0]!r}) in every row; there is nothing to learn"
        )
    if len(classes) > MAX_CLASSES and len(classes) >= 0.5 * len(labels):
        raise DataError(
            f"data.target: column '{target}' has {len(classes)} distinct values in {len(labels)} rows, too many to be "
            "classes; for a number to predict, set data.task=regression"
        )


def _text_in_numbers_hint(series: pd.Series, bad: np.ndarray) -> str:
    """What to do about text in a numeric column: a few distinct tokens are likely missing-value
    markers (``?``, ``n/a``, ``unknown``) for ``data.na_values``; many, or long ones, mean a text
    column."""
    if is_numeric_dtype(series):
        return ""
    tokens = pd.unique(series[bad].astype(str).str.strip())
    if len(tokens) <= 3 and all(len(token) <= 20 for token in tokens):
        listed = ",".join(tokens)
        return f"; if that marks a missing cell, add data.na_values=[{listed}]; else {TEXT_IN_NUMBERS}"
    return f"; {TEXT_IN_NUMBERS}"

