"""Wall time of one small sweep run sequentially and under the joblib launcher.

Both runs go through the real CLI (``python -m sweeper -m``) on the same trials: the random
sampler with the same seed and no pruner asks the same parameters in the same order whether
trials come one at a time or two at a time, so each run trains exactly the same networks.
Each run gets its own SQLite study and MLflow store in a temporary directory.

    python benchmarks/parallel_sweep.py          # diamonds, 16 trials x 40 epochs, n_jobs=2
    python benchmarks/parallel_sweep.py --data car_prices --trials 24 --epochs 80 --jobs 2

The ratio (parallel / sequential) is printed, never asserted: it depends on the machine and
on what else runs on it. Below 1 means the joblib launcher saves wall time. Each joblib worker
process pays a one-off start (importing NumPy, Hydra and MLflow, loading the data: about 10 s
on two cores), so sweeps of short trials gain little or lose.
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


def sweep_command(tmp: Path, name: str, args: argparse.Namespace, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "sweeper", "-m", "search=small", f"data={args.data}",
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra.sweeper.sampler=random", "hydra.sweeper.seed=0", "hydra.sweeper.pruner=none",
        f"hydra.sweeper.storage=sqlite:///{tmp / name / 'optuna.db'}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir={tmp / name / 'multirun'}",
        f"mlflow.tracking_uri=sqlite:///{tmp / name / 'mlflow.db'}",
        f"mlflow.experiment=bench-{name}",
        f"train.epochs={args.epochs}",
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


def trial_params(tmp: Path, name: str) -> list[dict]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / name / 'optuna.db'}")
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="diamonds", help="car_prices (tiny) or diamonds")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2, help="hydra.sweeper.n_jobs under joblib")
    args = parser.parse_args()

    print(f"data={args.data}, {args.trials} trials x {args.epochs} epochs, search=small, "
          f"random sampler, no pruner, SQLite; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="sweeper-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        sequential = timed_run(sweep_command(tmp, "sequential", args, []), "sequential", tmp)
        print(f"sequential                       {sequential:7.1f} s")
        joblib_args = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}",
                       f"hydra.sweeper.n_jobs={args.jobs}"]
        parallel = timed_run(sweep_command(tmp, "joblib", args, joblib_args), "joblib", tmp)
        print(f"hydra/launcher=joblib n_jobs={args.jobs}     {parallel:7.1f} s")
        same = trial_params(tmp, "sequential") == trial_params(tmp, "joblib")
        print(f"same trials in both runs          {'yes' if same else 'NO'}")
    print(f"ratio parallel/sequential         {parallel / sequential:7.2f}")


if __name__ == "__main__":
    main()
