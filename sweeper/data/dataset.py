"""`load_dataset`: a CSV file in, split and encoded arrays out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sweeper.data.csv import read_csv, resolve_path, sha256_file
from sweeper.data.missing import Missing
from sweeper.data.preprocessor import (
    DEFAULT_MAX_CATEGORIES,
    Preprocessor,
    check_columns,
    check_dtype,
    check_max_categories,
)
from sweeper.data.split import SPLITS, check_folds, fold_numbers, resolve_folds, split_indices
from sweeper.data.survey import Survey, survey
from sweeper.data.target import resolve_stratify, resolve_task, warp_target
from sweeper.errors import ConfigError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Split, encoded arrays of one CSV file and the state that produced them.

    X_* have shape (n_split, n_inputs) and y_* shape (n_split, 1), C-contiguous, in the dtype
    asked for; y is the scaled target (`preprocessor.inverse_target` gives original units).
    For classification (``task``) y_* are one-hot rows (n_split, K) of the classes
    ``preprocessor.labels`` (`codes` gives the class codes).
    `indices[split]` holds the 0-based data-row positions of the file in that split, in the
    order of the arrays' rows (rows dropped for missing cells are in no split).

    Cross-validated (``split.folds`` K ≥ 2): the validation rows join the training rows, the
    val arrays are empty (0 rows) and ``fold_of`` (n_train,) gives each training row its fold
    0..K−1: fold k's networks train on the rows outside it and validate on those in it.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    preprocessor: Preprocessor
    path: str
    sha256: str
    target: str
    indices: dict[str, np.ndarray] = field(repr=False)
    rows_in_file: int = 0
    dropped_rows: dict[str, int] = field(default_factory=dict)
    dropped_columns: tuple[str, ...] = ()
    missing: dict[str, int] = field(default_factory=dict)
    dialect: dict = field(default_factory=dict)
    stratified: bool = False
    #: For a regressed target of few whole numbers (a rating, a count, a 0/1 flag): how many
    #: (the summary says it was regressed and how to classify it); else 0.
    whole_number_levels: int = 0
    fold_of: np.ndarray | None = field(default=None, repr=False)

    @property
    def folds(self) -> int:
        """K: the folds of cross-validation, 1 for one validation split."""
        return 1 if self.fold_of is None else int(self.fold_of.max()) + 1

    @property
    def task(self) -> str:
        """``regression`` or ``classification``."""
        return self.preprocessor.task

    @property
    def classes(self) -> list[str]:
        """The class names in code order (classification), else []."""
        labels = self.preprocessor.labels
        return labels.names() if labels is not None else []

    def codes(self, split: str) -> np.ndarray:
        """Class codes (n_split,) int64 of a split's rows (classification)."""
        return np.argmax(getattr(self, f"y_{split}"), axis=1)

    @property
    def rows(self) -> dict[str, int]:
        """Row count per split: {"train": n_train, "val": n_val, "test": n_test}."""
        return {split: int(len(self.indices[split])) for split in SPLITS}

    @property
    def n_inputs(self) -> int:
        return len(self.feature_names)

    @property
    def eval_sets(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{"val": (X_val, y_val), "test": (X_test, y_test)}, the trainer's `eval_sets`."""
        return {"val": (self.X_val, self.y_val), "test": (self.X_test, self.y_test)}

    def columns(self) -> dict[str, dict]:
        """Per feature, what was done to it: the encoder's description (`Preprocessor.describe`)
        plus ``missing``, the count of its missing cells among the rows kept (each one imputed
        with ``fill``)."""
        described = self.preprocessor.describe()
        return {name: described[name] | {"missing": self.missing.get(name, 0)} for name in described}

    def info(self) -> dict:
        """JSON-ready description for `data.json`: path, sha256, target, features, rows, and
        what was done to the file (dialect, rows dropped and why, columns left out) and to
        each column (`columns`)."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "target": self.target,
            "task": self.task,
            **({"classes": self.classes, "stratified": self.stratified} if self.classes else {}),
            "features": list(self.preprocessor.features),
            "n_inputs": self.n_inputs,
            "rows": self.rows,
            **({"folds": self.folds} if self.folds > 1 else {}),
            "rows_in_file": self.rows_in_file,
            "dropped_rows": dict(self.dropped_rows),
            "dropped_columns": list(self.dropped_columns),
            "dialect": dict(self.dialect),
            "columns": self.columns(),
        }

    def summary(self) -> list[str]:
        """One or two lines for the terminal: rows used and dropped, and what was imputed,
        grouped or converted (the second line only when a column was changed)."""
        name = Path(self.path).name
        used = sum(self.rows.values())
        line = f"data: {name}, {used} of {self.rows_in_file} rows, {len(self.preprocessor.features)} feature columns -> {self.n_inputs} inputs"
        if self.folds > 1:
            line += (f"; {self.folds}-fold cross-validation over {self.rows['train']} train + validation rows, "
                     f"{self.rows['test']} test rows")
        if self.classes:
            line += f", {len(self.classes)} classes of {self.target}{' (stratified split)' if self.stratified else ''}"
        elif self.whole_number_levels:
            line += (f"; {self.target} holds {self.whole_number_levels} whole numbers and is regressed "
                     "(data.task=classification to predict them as classes)")
        if self.dropped_rows:
            line += " (dropped: " + ", ".join(
                f"{count} {_DROP_REASONS[reason].format(target=self.target)}" for reason, count in self.dropped_rows.items()
            ) + ")"
        if self.dropped_columns:
            line += f"; left out: {', '.join(self.dropped_columns)}"
        if self.dialect.get("sep", ",") != "," or self.dialect.get("encoding", "utf-8") != "utf-8":
            line += f"; read as {self.dialect['sep']!r}-separated {self.dialect['encoding']}"
            if self.dialect.get("decimal_comma"):
                line += " with decimal commas"
        changes = []
        for column, facts in self.columns().items():
            if facts["missing"] and facts["fill"] is not None:
                changes.append(f"{column}: {facts['missing']} missing -> {facts['strategy']} {_shown(facts['fill'])}")
            if facts.get("grouped_as_other"):
                changes.append(f"{column}: {facts['grouped_as_other']} rarest categories -> <other>")
            if facts.get("converted"):
                changes.append(f"{column}: ISO dates -> {facts['converted']}")
        return [line] + (["data: " + "; ".join(changes)] if changes else [])


_SPLIT_ROWS = {"train": "training rows", "val": "validation rows", "test": "test rows"}

_DROP_REASONS = {
    "target_missing": "without {target}",
    "numeric_missing": "with missing numbers (data.missing.numeric=drop_rows)",
    "categorical_missing": "with missing categories (data.missing.categorical=drop_rows)",
}


def _shown(fill: object) -> str:
    return f"{fill:.6g}" if isinstance(fill, float) else str(fill)


#: The last dataset `load_dataset` made, under its arguments and its file's (path, size, mtime_ns).
_last: dict[tuple, Dataset] = {}


def load_dataset(
    path: str | Path,
    target: str,
    features: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    target_scaling: str = "standard",
    test_size: float = 0.2,
    val_size: float = 0.1,
    shuffle: bool = True,
    seed: int = 0,
    dtype: str = "float64",
    drop: Iterable[str] = (),
    missing: Missing = Missing(),
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    sep: str | None = None,
    encoding: str | None = None,
    na_values: Iterable[str] = (),
    task: str = "auto",
    stratify: str | bool = "auto",
    folds: int | str = 1,
) -> Dataset:
    """Read the CSV at `path`, check it whole (`sweeper.data.survey`), split the rows kept
    (`split_indices`), fit a `Preprocessor` on the training rows only and encode every split.

    `features=None` uses every column but `target` and those in `drop`. Every used cell is
    checked on the whole file before splitting, so a bad cell is reported with its file row
    whichever split it falls in, and every bad column in one message. Raises DataError (file,
    column or rows unusable) or ConfigError (a setting out of range), each one line naming the
    file, column or key. `missing`, `max_categories`, `sep`, `encoding` and `na_values` are the
    ``data.missing``, ``data.max_categories``, ``data.sep``, ``data.encoding`` and
    ``data.na_values`` settings; `task` is ``data.task`` (`sweeper.data.target.resolve_task`:
    classification one-hot encodes the target's classes, fitted on the training rows, and does
    not scale it) and `stratify` is ``split.stratify`` (``auto``: on for classification).
    `folds` is ``split.folds`` (`sweeper.data.split.resolve_folds`): with K ≥ 2 the test rows
    are the ones one split would hold, the train and validation rows are pooled as training
    rows (the preprocessor is fitted on them all) and dealt to K folds (`fold_numbers`, from
    `seed`, stratified as the split is).

    The last dataset loaded is kept for the process: the trials of a sweep ask for the same one
    again and again (88 ms per trial on diamonds). It is reused only for the same arguments and
    the same file (path, size, modification time); its arrays are read-only, so no trial can
    change what the next one trains on.
    """
    resolved = resolve_path(path)
    stat = resolved.stat()
    features = None if features is None else tuple(str(f) for f in features)
    categorical = tuple(str(c) for c in categorical)
    drop = tuple(str(d) for d in drop)
    na_values = tuple(str(v) for v in na_values)
    task = str(task)
    key = (resolved, stat.st_size, stat.st_mtime_ns, target, features, categorical, target_scaling, test_size,
           val_size, shuffle, seed, dtype, drop, missing, max_categories, sep, encoding, na_values, task, stratify,
           folds)
    cached = _last.get(key)
    if cached is not None:
        return cached
    out_dtype = check_dtype(dtype)
    check_max_categories(max_categories)  # before the file is read (Preprocessor checks it again)
    check_folds(folds)
    frame = read_csv(resolved, sep=sep, encoding=encoding, na_values=na_values)
    source = resolved.name
    check_columns(frame, [target], "data.target", source)
    check_columns(frame, drop, "data.drop", source)
    if target in drop:
        raise ConfigError(f"data.drop: {target!r} is the target (data.target); it cannot be dropped")
    if features is None:
        features = [str(c) for c in frame.columns if c != target and c not in drop]
    else:
        check_columns(frame, features, "data.features", source)
        features = [f for f in features if f not in drop]
    categorical = [c for c in categorical if c not in drop]
    check_columns(frame, categorical, "data.categorical", source)
    task = resolve_task(task, frame[target])
    stratified = resolve_stratify(stratify, task)
    preprocessor = Preprocessor(target, features, categorical, target_scaling, missing, max_categories, na_values,
                                task=task)

    found: Survey = survey(frame, target, features, categorical, missing, max_categories, source, task=task)
    kept = frame.iloc[found.keep]
    kept_target = found.target_values[found.keep]
    if task == "regression":  # on the whole file, so the count does not depend on the split
        warp_target(target_scaling, kept_target, target, f"rows of {source}")
    classes = np.unique(kept_target.astype(str), return_inverse=True)[1] if stratified else None
    positions = split_indices(len(kept), test_size, val_size, shuffle, seed, stratify=classes)
    pooled = np.concatenate([positions["train"], positions["val"]])
    k = resolve_folds(folds, len(pooled))
    fold_of = None
    if k > 1:
        fold_of = fold_numbers(len(pooled), k, seed, None if classes is None else classes[pooled])
        positions = {"train": pooled, "val": pooled[:0], "test": positions["test"]}
        fold_of.flags.writeable = False
    preprocessor.fit(kept.iloc[positions["train"]], roles=found.roles)
    # Encoding all rows once and then taking rows is cheaper than three transforms.
    X_all = preprocessor.transform(kept, dtype=out_dtype.name)
    arrays = {}
    for split in SPLITS:
        arrays[f"X_{split}"] = np.ascontiguousarray(X_all[positions[split]])
        arrays[f"y_{split}"] = preprocessor.transform_target(
            kept_target[positions[split]], dtype=out_dtype.name, what=_SPLIT_ROWS[split])
    indices = {split: found.keep[positions[split]] for split in SPLITS}
    for array in [*arrays.values(), *indices.values()]:
        array.flags.writeable = False
    dataset = Dataset(
        **arrays,
        feature_names=tuple(preprocessor.feature_names),
        preprocessor=preprocessor,
        path=str(resolved),
        sha256=sha256_file(resolved),
        target=target,
        indices=indices,
        rows_in_file=len(frame),
        dropped_rows=found.dropped_rows,
        dropped_columns=tuple(drop),
        missing=found.missing,
        dialect=dict(frame.attrs) | {"na_values": list(na_values)},
        stratified=stratified,
        whole_number_levels=_whole_number_levels(kept_target) if task == "regression" else 0,
        fold_of=fold_of,
    )
    _last.clear()
    _last[key] = dataset
    return dataset


#: Up to this many distinct whole-number targets, a regression says how to classify them instead.
FEW_LEVELS = 20


def _whole_number_levels(y: np.ndarray) -> int:
    """How many distinct values ``y`` (float64, no NaN) holds if they are at most `FEW_LEVELS`
    whole numbers, else 0."""
    distinct = np.unique(y)
    return len(distinct) if len(distinct) <= FEW_LEVELS and np.all(np.mod(distinct, 1) == 0) else 0
