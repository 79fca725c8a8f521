"""The data layer: CSV file → split, encoded arrays, and the fitted state to encode new rows.

Imports only numpy, pandas, the standard library and `sweeper.errors`.

    ds = load_dataset("data/diamonds.csv", target="price", seed=0)
    ds.X_train.shape                     # (n_train, 26)
    ds.preprocessor.inverse_target(ŷ)    # predictions back in dollars
    ds.summary()                         # what was dropped, imputed, grouped (for the terminal)
    np.savez(f, **ds.preprocessor.to_arrays())
    Preprocessor.from_arrays(np.load(f, allow_pickle=False)).transform(new_rows)

Encoders, a target's classes and the registries of strategies live in their modules.
"""

from sweeper.data.csv import check_dialect, read_csv, sha256_file
from sweeper.data.dataset import Dataset, load_dataset
from sweeper.data.missing import Missing
from sweeper.data.preprocessor import DTYPES, Preprocessor, check_max_categories
from sweeper.data.split import check_folds, check_split, fold_numbers, split_indices
from sweeper.data.target import TARGET_SCALINGS, TASKS, check_stratify
