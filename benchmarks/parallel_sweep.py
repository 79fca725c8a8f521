"""Wall time of one small sweep run sequentially and under the joblib launcher.

Both runs go through the real CLI (``python -m sweeper -m``) on the same trials: the random
sampler with the same seed and no pruner asks the same parameters in the same order whether
trials come one at a time or two at a time, so each run trains exactly the same networks.
Each run gets its own SQLite study and MLflow store in a temporary directory.

    python benchmarks/parallel_sweep.py                    # 24 trials, n_jobs=2
    python benchmarks/parallel_sweep.py --trials 24 --epochs 80 --jobs 2

The ratio (parallel / sequential) is printed, never asserted: it depends on the machine.
Below 1 means the joblib launcher saves wall time; each joblib worker pays a one-off start
(importing NumPy, Hydra, MLflow), so very short sweeps gain little.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweep_command(tmp: Path, name: str, trials: int, epochs: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "sweeper", "-m", "search=small",
        f"hydra.sweeper.n_trials={trials}",
        "hydra.sweeper.sampler=random", "hydra.sweeper.seed=0", "hydra.sweeper.pruner=none",
        f"hydra.sweeper.storage=sqlite:///{tmp / name / 'optuna.db'}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={tmp / name / 'multirun'}",
        f"mlflow.tracking_uri=sqlite:///{tmp / name / 'mlflow.db'}",
        f"mlflow.experiment=bench-{name}",
        f"train.epochs={epochs}",
        "train.early_stopping.patience=1000",  # every trial trains all its epochs
        *extra,
    ]


def timed_run(cmd: list[str], name: str, tmp: Path) -> float:
    (tmp / name).mkdir(parents=True, exist_ok=True)
    log = tmp / name / "sweep.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if code != 0:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"{name} sweep failed with exit status {code}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2, help="hydra.sweeper.n_jobs under joblib")
    args = parser.parse_args()

    print(f"{args.trials} trials x {args.epochs} epochs, search=small, random sampler, "
          f"no pruner, SQLite; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="sweeper-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        sequential = timed_run(sweep_command(tmp, "sequential", args.trials, args.epochs, []),
                               "sequential", tmp)
        print(f"sequential                       {sequential:7.1f} s")
        joblib_args = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}",
                       f"hydra.sweeper.n_jobs={args.jobs}"]
        parallel = timed_run(sweep_command(tmp, "joblib", args.trials, args.epochs, joblib_args),
                             "joblib", tmp)
        print(f"hydra/launcher=joblib n_jobs={args.jobs}     {parallel:7.1f} s")
    print(f"ratio parallel/sequential         {parallel / sequential:7.2f}")


if __name__ == "__main__":
    main()
