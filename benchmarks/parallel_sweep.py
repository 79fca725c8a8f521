"""Throughput of one sweep with ``hydra.sweeper.n_jobs=1`` and ``n_jobs=2``, side by side.

Each run goes through the real CLI (``python -m sweeper -m``) in a temporary folder with its
own journal-file study and MLflow store: the small search space, TPE, the median pruner (on, as
users run it), ``N`` trials. With ``n_jobs=2`` the default launcher keeps two trials running in
two worker processes (``sweeper.launcher.local``); ``--joblib`` adds Hydra's joblib
launcher with two jobs as a third contender. Runs are interleaved (n_jobs=1, n_jobs=2, [joblib],
then again) and the medians of ``--rounds`` rounds are compared.

Throughput is trials per second of wall time, interpreter start and the sweep's own start and
finish included (what a user waits for). The ratio n_jobs=2 / n_jobs=1 is printed against the
targets (diamonds ≥ 1.8, car_prices ≥ 1.5) with PASS or MISS, never asserted: it depends on the
machine and on what else runs on it. With two lanes the trials asked differ from a sequential
run's (TPE sees running trials, the pruner sees fewer finished peers), so the check is on what
must hold for any run: exactly N trials, all finished, one MLflow run per trial with the
trial's state.

    python benchmarks/parallel_sweep.py                         # diamonds and car_prices, 16 trials
    python benchmarks/parallel_sweep.py --data diamonds --rounds 1 --joblib
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

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"diamonds": 1.8, "car_prices": 1.5}
CONTENDERS = {"n_jobs=1": [], "n_jobs=2": ["hydra.sweeper.n_jobs=2"],
              "joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]}


def sweep_command(folder: Path, data: str, trials: int, epochs: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "sweeper", "-m", "search=small", f"data={data}",
        f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.seed=0",
        f"hydra.sweeper.storage={folder / 'optuna.log'}",
        f"hydra.sweep.dir={folder / 'multirun'}",
        f"mlflow.tracking_uri=sqlite:///{folder / 'mlflow.db'}",
        f"train.epochs={epochs}",
        *extra,
    ]


def timed_run(cmd: list[str], folder: Path) -> float:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "sweep.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if code != 0:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"the sweep in {folder} failed with exit status {code}")
    return seconds


def consistent(folder: Path, data: str, trials: int) -> tuple[bool, dict[str, int]]:
    """Whether the study holds exactly ``trials`` finished trials and MLflow one child run per
    trial whose state tag is the trial's; and the count of trials per state."""
    import optuna
    from mlflow import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "optuna.log")))
    [summary] = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    states = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(data)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    by_trial = {int(r.data.tags["sweeper.trial"]): r.data.tags.get("sweeper.state") for r in runs
                if "sweeper.trial" in r.data.tags}
    ok = (len(study.trials) == trials and set(states) <= {"COMPLETE", "PRUNED", "FAIL"}
          and by_trial == {t.number: t.state.name for t in study.trials})
    return ok, states


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["diamonds", "car_prices"], help="car_prices and/or diamonds")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--joblib", action="store_true", help="also Hydra's joblib launcher with two jobs")
    args = parser.parse_args()

    names = [name for name in CONTENDERS if args.joblib or "joblib" not in name]
    print(f"{args.trials} trials x {args.epochs} epochs, search=small, TPE, median pruner, journal file; "
          f"{os.cpu_count()} CPUs; {args.rounds} interleaved round(s), medians")
    with tempfile.TemporaryDirectory(prefix="sweeper-bench-") as tmp_dir:
        for data in args.data:
            walls: dict[str, list[float]] = {name: [] for name in names}
            checks: dict[str, list[str]] = {name: [] for name in names}
            for round_ in range(args.rounds):
                for name in names:
                    folder = Path(tmp_dir) / data / f"{name.replace(' ', '_').replace('=', '')}-{round_}"
                    walls[name].append(timed_run(sweep_command(folder, data, args.trials, args.epochs,
                                                               CONTENDERS[name]), folder))
                    ok, states = consistent(folder, data, args.trials)
                    checks[name].append(("ok " if ok else "NOT CONSISTENT ") + str(states))
            base = statistics.median(walls["n_jobs=1"])
            print(f"\n{data}")
            print(f"  {'contender':<18} {'wall s':>7} {'trials/s':>9} {'vs n_jobs=1':>12}  study and MLflow")
            for name in names:
                wall = statistics.median(walls[name])
                print(f"  {name:<18} {wall:7.1f} {args.trials / wall:9.3f} {base / wall:11.2f}x  {'; '.join(checks[name])}")
            ratio = base / statistics.median(walls["n_jobs=2"])
            target = TARGETS.get(data)
            if target is not None:
                print(f"  {'PASS' if ratio >= target else 'MISS'}  throughput n_jobs=2 / n_jobs=1 = {ratio:.2f} "
                      f"(target >= {target})")


if __name__ == "__main__":
    main()
