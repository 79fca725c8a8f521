"""Seconds to load and encode a CSV: ``sweeper.data.load_dataset`` against pandas + scikit-learn.

Both read the same file and end with the same kind of arrays, on the same rows:

- ours: ``load_dataset(path, target, seed=k)`` with the bundled defaults: read (pandas), the
  seeded 80/10/10 split, one-hot string columns, standardised inputs and target;
- scikit-learn: ``pandas.read_csv``, ``train_test_split`` twice (80/10/10, seeded alike), a
  ``ColumnTransformer`` of ``OneHotEncoder(handle_unknown="ignore")`` on the string columns and
  ``StandardScaler`` on the numbers, fitted on the training rows and applied to all three, and
  ``StandardScaler`` on the target.

Repeats are interleaved (ours, scikit-learn, ours, …); each figure is the median, and the ratio
ours/scikit-learn is printed with the target (ours no slower than 1.5 × scikit-learn's pipeline,
which does less: no missing-value report, no dataset digest).

    python benchmarks/load_speed.py                    # diamonds (53,940 rows), 5 repeats
    python benchmarks/load_speed.py --dataset car_prices --repeats 9
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5
DATASETS = {"diamonds": "price", "car_prices": "Price", "penguins": "body_mass_g"}


def ours(path: Path, target: str, seed: int) -> float:
    from sweeper.data import load_dataset

    start = time.perf_counter()
    load_dataset(path, target, seed=seed)  # a new seed each time: its one-entry cache never answers
    return time.perf_counter() - start


def sklearn_pipeline(path: Path, target: str, seed: int) -> float:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    start = time.perf_counter()
    frame = pd.read_csv(path).dropna(subset=[target])
    y = frame.pop(target).to_numpy(dtype=float).reshape(-1, 1)
    train, rest, y_train, y_rest = train_test_split(frame, y, test_size=0.2, random_state=seed)
    val, test, y_val, y_test = train_test_split(rest, y_rest, test_size=0.5, random_state=seed)
    strings = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    numbers = [c for c in frame.columns if c not in strings]
    encode = ColumnTransformer([("onehot", OneHotEncoder(handle_unknown="ignore"), strings),
                                ("scale", StandardScaler(), numbers)])
    encode.fit(train)
    for rows in (train, val, test):
        encode.transform(rows)
    scaler = StandardScaler().fit(y_train)
    for values in (y_train, y_val, y_test):
        scaler.transform(values)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=DATASETS, default="diamonds")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    path, target = ROOT / "data" / f"{args.dataset}.csv", DATASETS[args.dataset]
    ours(path, target, 1000), sklearn_pipeline(path, target, 1000)  # imports and the OS's file cache, not timed
    times: dict[str, list[float]] = {"ours": [], "sklearn": []}
    for seed in range(args.repeats):
        times["ours"].append(ours(path, target, seed))
        times["sklearn"].append(sklearn_pipeline(path, target, seed))
    ours_s, peer_s = statistics.median(times["ours"]), statistics.median(times["sklearn"])
    ratio = ours_s / peer_s
    print(f"{args.dataset}: ours {ours_s * 1000:.0f} ms, pandas + scikit-learn {peer_s * 1000:.0f} ms, "
          f"ratio {ratio:.2f} (target <= {TARGET_RATIO}: {'PASS' if ratio <= TARGET_RATIO else 'MISS'}), "
          f"medians of {args.repeats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
