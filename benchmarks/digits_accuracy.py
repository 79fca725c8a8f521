"""Digits test accuracy: ours against scikit-learn's MLPClassifier on the same rows, per seed.

For each seed S the split is the one ``python -m sweeper data=digits seed=S`` uses (stratified,
70% train / 10% validation / 20% test, inputs standardised on the training rows). Three numbers
per seed, measured in the same run:

- ``sklearn``: ``MLPClassifier()`` with its defaults (one hidden layer of 100 ReLU units, Adam,
  up to 200 epochs, L2 1e-4), ``random_state=S``, fitted on the same standardised training rows;
- ``single``: ``python -m sweeper data=digits seed=S`` (the default network: [64, 32] ReLU, SGD
  lr 0.01 momentum 0.9, early stopping on the validation loss);
- ``sweep``: the test accuracy of the best trial (by ``val_log_loss``) of
  ``python -m sweeper -m data=digits seed=S hydra.sweeper.n_trials=N``.

Each run gets a throw-away MLflow store and Optuna storage. No figure is asserted anywhere: the
test set has 359 rows, so one row is 0.28 points of accuracy.

    python benchmarks/digits_accuracy.py                 # seeds 0 1 2, 20 trials (~3 minutes)
    python benchmarks/digits_accuracy.py --seeds 0 --trials 5
    python benchmarks/digits_accuracy.py --space 'model.hidden=choice([64],[128],[128,64])'
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def sklearn_accuracy(seed: int) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from sweeper.data import load_dataset

    d = load_dataset(ROOT / "data" / "digits.csv", "digit", task="classification", seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(random_state=seed).fit(d.X_train, d.codes("train"))
    return float(model.score(d.X_test, d.codes("test")))


def ours(seed: int, n_trials: int | None, space: list[str] = ()) -> float:
    """Test accuracy of a single run (``n_trials`` None) or of a sweep's best trial."""
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory(prefix="digits-") as folder:
        uri = f"sqlite:///{folder}/mlflow.db"
        args = ["data=digits", f"seed={seed}", f"mlflow.tracking_uri={uri}"]
        if n_trials is not None:
            args = ["-m", *args, f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.storage=sqlite:///{folder}/optuna.db",
                    *space]
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
        done = subprocess.run([sys.executable, "-m", "sweeper", *args], cwd=folder, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"python -m sweeper {' '.join(args)} failed:\n{done.stderr[-2000:]}")
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("digits").experiment_id
        if n_trials is None:
            [run] = client.search_runs([experiment])
            return run.data.metrics["test_accuracy"]
        [parent] = [r for r in client.search_runs([experiment]) if "mlflow.parentRunId" not in r.data.tags]
        return parent.data.metrics["best_test_accuracy"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--space", nargs="*", default=[], metavar="OVERRIDE",
                        help="search-space overrides for the sweep, e.g. 'model.hidden=choice([64],[128,64])'")
    args = parser.parse_args(argv)
    rows = []
    print(f"{'seed':>4}  {'sklearn':>8}  {'single':>8}  {'sweep':>8}   (test accuracy, {args.trials}-trial sweep)")
    for seed in args.seeds:
        row = (sklearn_accuracy(seed), ours(seed, None), ours(seed, args.trials, args.space))
        rows.append(row)
        print(f"{seed:>4}  " + "  ".join(f"{v:>8.4f}" for v in row), flush=True)
    medians = [statistics.median(column) for column in zip(*rows)]
    print("median  " + "  ".join(f"{v:>8.4f}" for v in medians))
    print(f"sweep − sklearn: {np.median([s - k for k, _, s in rows]):+.4f} (median over seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
