"""`load_dataset`: a CSV file in, split and encoded arrays out."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from sweeper.data.columns import numeric_values
from sweeper.data.csv import read_csv, resolve_path, sha256_file
from sweeper.data.preprocessor import Preprocessor, check_columns, check_dtype, clean_frame
from sweeper.data.split import SPLITS, split_indices


@dataclass(frozen=True, eq=False)
class Dataset:
    """Split, encoded arrays of one CSV file and the state that produced them.

    X_* have shape (n_split, n_inputs) and y_* shape (n_split, 1), C-contiguous, in the dtype
    asked for; y is the scaled target (`preprocessor.inverse_target` gives original units).
    `indices[split]` holds the 0-based data-row positions of the file in that split, in the
    order of the arrays' rows.
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

    def info(self) -> dict:
        """JSON-ready description for `data.json`: path, sha256, target, features, rows."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "target": self.target,
            "features": list(self.preprocessor.features),
            "n_inputs": self.n_inputs,
            "rows": self.rows,
        }


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
) -> Dataset:
    """Read the CSV at `path`, split its rows (`split_indices`), fit a `Preprocessor` on the
    training rows only and encode every split with it.

    `features=None` uses every column but `target`. Every cell of the used columns is checked
    on the whole file before splitting, so a bad cell is reported with its file row whichever
    split it falls in. Raises DataError (file, column or rows unusable) or ConfigError (a
    setting out of range), each with a one-line message naming the file, column or key.

    The last dataset loaded is kept for the process: the trials of a sweep ask for the same one
    again and again (88 ms per trial on diamonds). It is reused only for the same arguments and
    the same file (path, size, modification time); its arrays are read-only, so no trial can
    change what the next one trains on.
    """
    resolved = resolve_path(path)
    stat = resolved.stat()
    return _load_dataset(
        str(resolved), stat.st_size, stat.st_mtime_ns, target,
        None if features is None else tuple(str(f) for f in features),
        tuple(str(c) for c in categorical), target_scaling, test_size, val_size, shuffle, seed, dtype,
    )


@functools.lru_cache(maxsize=1)
def _load_dataset(
    path: str,
    size: int,
    mtime_ns: int,
    target: str,
    features: tuple[str, ...] | None,
    categorical: tuple[str, ...],
    target_scaling: str,
    test_size: float,
    val_size: float,
    shuffle: bool,
    seed: int,
    dtype: str,
) -> Dataset:
    """``load_dataset`` for a resolved path; ``size`` and ``mtime_ns`` only key the cache."""
    out_dtype = check_dtype(dtype)
    resolved = Path(path)
    frame = read_csv(resolved)
    source = resolved.name
    check_columns(frame, [target], "data.target", source)
    if features is None:
        features = [str(c) for c in frame.columns if c != target]
    else:
        features = [str(f) for f in features]
        check_columns(frame, features, "data.features", source)
    categorical = [str(c) for c in categorical]
    check_columns(frame, categorical, "data.categorical", source)
    preprocessor = Preprocessor(target, features, categorical, target_scaling)

    cleaned = clean_frame(frame, features, categorical)
    cleaned[target] = numeric_values(frame[target], target, is_target=True)
    indices = split_indices(len(frame), test_size, val_size, shuffle, seed)
    preprocessor.fit(cleaned.iloc[indices["train"]])
    # Encoding all rows once and then taking rows is cheaper than three transforms.
    X_all = preprocessor.transform(cleaned, dtype=out_dtype.name)
    y_all = preprocessor.transform_target(cleaned[target], dtype=out_dtype.name)
    arrays = {}
    for split in SPLITS:
        arrays[f"X_{split}"] = np.ascontiguousarray(X_all[indices[split]])
        arrays[f"y_{split}"] = np.ascontiguousarray(y_all[indices[split]])
    for array in [*arrays.values(), *indices.values()]:
        array.flags.writeable = False
    return Dataset(
        **arrays,
        feature_names=tuple(preprocessor.feature_names),
        preprocessor=preprocessor,
        path=str(resolved),
        sha256=sha256_file(resolved),
        target=target,
        indices=indices,
    )
