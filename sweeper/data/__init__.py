"""The data layer: CSV file → split, encoded arrays, and the fitted state to encode new rows.

Imports only numpy, pandas, the standard library and `sweeper.errors`.

    ds = load_dataset("data/diamonds.csv", target="price", seed=0)
    ds.X_train.shape                     # (n_train, 26)
    ds.preprocessor.inverse_target(ŷ)    # predictions back in dollars
    np.savez(f, **ds.preprocessor.to_arrays())
    Preprocessor.from_arrays(np.load(f, allow_pickle=False)).transform(new_rows)
"""

from sweeper.data.columns import COLUMN_KINDS, BinaryColumn, Column, NumericColumn, OneHotColumn
from sweeper.data.csv import read_csv, sha256_file
from sweeper.data.dataset import Dataset, load_dataset
from sweeper.data.preprocessor import DTYPES, Preprocessor
from sweeper.data.split import SPLITS, split_indices
from sweeper.data.target import TARGET_SCALINGS

__all__ = [
    "COLUMN_KINDS",
    "DTYPES",
    "SPLITS",
    "TARGET_SCALINGS",
    "BinaryColumn",
    "Column",
    "Dataset",
    "NumericColumn",
    "OneHotColumn",
    "Preprocessor",
    "load_dataset",
    "read_csv",
    "sha256_file",
    "split_indices",
]
