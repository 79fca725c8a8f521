"""How many trials of the default search space are wasted (FAIL: diverged or collapsed) on real tables.

Runs ``python -m sweeper -m`` exactly as a user would, with the default search space
(``conf/search/default.yaml``) and sampler, over seeds × datasets, each sweep in a throw-away
store, and reads the studies back: the share of FAIL trials, and whether trial 0 trained the
base config (``hydra.sweeper.start_from_defaults``). Diamonds trains 15 epochs a trial (43k
rows); the others the default 200 with early stopping and the median pruner.

    python benchmarks/wasted_trials.py                    # 3 seeds x 3 tables x 30 trials
    python benchmarks/wasted_trials.py --seeds 0 --trials 10 --datasets car_prices
    python benchmarks/wasted_trials.py --space 'optimizer.lr=tag(log,interval(1e-3,0.1))'

Extra ``--space`` overrides change the searched space (Hydra sweep syntax), to measure a
candidate space against the default in the same run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

DATASETS = {"car_prices": [], "diamonds": ["train.epochs=15"], "penguins": []}


def sweep(dataset: str, seed: int, trials: int, space: list[str], folder: Path) -> dict:
    """One sweep; its FAIL share, trial 0's params, the median lr of FAIL and COMPLETE trials."""
    storage = f"sqlite:///{folder / 'optuna.db'}"
    args = [sys.executable, "-m", "sweeper", "-m", f"data={dataset}", *DATASETS[dataset], *space,
            f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.seed={seed}", "hydra.sweeper.study_name=bench",
            f"hydra.sweeper.storage={storage}", f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}",
            f"hydra.sweep.dir={folder / 'multirun'}"]
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    started = time.monotonic()
    proc = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{dataset} seed {seed}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    study = optuna.load_study(study_name="bench", storage=storage)
    states = [t.state for t in study.trials]

    def median_lr(state: TrialState) -> float:
        lrs = [t.params["optimizer.lr"] for t in study.trials if t.state == state and "optimizer.lr" in t.params]
        return statistics.median(lrs) if lrs else float("nan")

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    return {
        "failed": states.count(TrialState.FAIL), "trials": len(states),
        "first": study.trials[0].params if study.trials else {},
        "lr_fail": median_lr(TrialState.FAIL), "lr_complete": median_lr(TrialState.COMPLETE),
        "best": min((t.value for t in complete), default=float("nan")),
        "seconds": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--space", nargs="*", default=[], help="search-space overrides to measure instead")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    print(f"space: {' '.join(args.space) or 'conf/search/default.yaml'}; {args.trials} trials a sweep")
    print(f"{'dataset':<11}{'seed':>5}{'FAIL':>7}{'share':>8}{'lr FAIL':>10}{'lr OK':>9}{'best':>12}{'s':>6}  trial 0")
    total_failed = total = 0
    for dataset in args.datasets:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix="sweeper-bench-") as tmp:
                r = sweep(dataset, seed, args.trials, args.space, Path(tmp))
            total_failed, total = total_failed + r["failed"], total + r["trials"]
            first = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in r["first"].items())
            print(f"{dataset:<11}{seed:>5}{r['failed']:>7}{r['failed'] / max(1, r['trials']):>8.0%}"
                  f"{r['lr_fail']:>10.3g}{r['lr_complete']:>9.3g}{r['best']:>12.5g}{r['seconds']:>6.0f}  {first}",
                  flush=True)
    print(f"all: {total_failed} of {total} trials FAIL ({total_failed / max(1, total):.1%})")


if __name__ == "__main__":
    main()
