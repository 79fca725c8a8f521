"""Where a sweep's time goes besides training: the per-trial overhead, part by part.

Runs ``python -m sweeper -m`` (the default search space, ``train.epochs`` fixed, N trials) on
car_prices in a temporary folder with its own MLflow and Optuna SQLite files, in a child
process, and reports:

- ``wall``: the child's wall time, interpreter start and imports included;
- ``train_seconds``: the sum of the trials' ``train_seconds`` read back from MLflow (this is
  ``fit`` including its per-epoch callbacks: curve buffering and the Optuna report);
- ``training``: the time inside ``fit`` minus those callbacks, the sweep's useful work;
- ``overhead = wall − training``, its share of the wall time, and its parts.

The parts are real ``time.perf_counter`` spans: before the sweep starts, the child wraps the
functions that do each part (``BasicLauncher.launch``, ``sweeper.app.run``, ``load_dataset``,
``fit``, the ``MlflowRun`` methods, ``plot_loss_curves``, ``TrialLink.report``, the sweeper's
ask/tell, ...) and records each span's self time (its duration minus the spans nested in it),
so the parts never overlap and add up to at most the wall time; what no span covers
(interpreter start, imports, Hydra's start-up, logging) is the ``unattributed`` part. Nothing
in the product is changed by the benchmark; it runs the in-process (basic) launcher, where every
job shares the child process.

Then the cold start of ``python -m sweeper --help``: the median wall time of several runs, and
which heavy libraries ``python -X importtime`` shows it importing (MLflow and matplotlib must
not be among them).

    python benchmarks/sweep_overhead.py                    # 30 trials x 200 epochs (the default sweep)
    python benchmarks/sweep_overhead.py --trials 10 --epochs 50 -- hydra.sweeper.pruner=none
    python benchmarks/sweep_overhead.py --quick --json     # a few seconds; one JSON object
"""
from __future__ import annotations

import argparse
import atexit
import functools
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD_FRACTION = 0.10
TARGET_HELP_SECONDS = 1.0
HEAVY = ("mlflow", "matplotlib", "optuna", "sqlalchemy", "pandas", "numpy", "scipy")

# part -> (description, [(module, attribute path), ...]); each listed callable becomes a span.
# Order is the table's order. "per_trial" parts happen once per trial, the others once a sweep.
PARTS: dict[str, tuple[str, bool, list[tuple[str, str]]]] = {
    "hydra_job": ("Hydra job setup (compose the job config, run_job, .hydra/ files, logging)", True,
                  [("hydra._internal.core_plugins.basic_launcher", "BasicLauncher.launch")]),
    "job_other": ("job: validate + resolve config, network, final metrics", True,
                  [("sweeper.app", "run")]),
    "data": ("data loading (CSV, split, scalers)", True, [("sweeper.data", "load_dataset")]),
    "training": ("training (fit, without its callbacks)", True, [("sweeper.train", "fit")]),
    "mlflow_run": ("MLflow run creation (experiment lookup, create_run, env tags)", True,
                   [("sweeper.app", "_start_mlflow_run")]),
    "mlflow_params": ("MLflow params (log_batch)", True,
                      [("sweeper.tracking.mlflow_run", "MlflowRun.log_params")]),
    "mlflow_metrics": ("MLflow metrics (per-epoch buffering + batched sends + final)", True,
                       [("sweeper.tracking.mlflow_run", "MlflowRun.log_metrics"),
                        ("sweeper.tracking.mlflow_run", "MlflowRun.flush"),
                        ("sweeper.app", "_CurveLogger.__call__"),
                        ("sweeper.app", "_CurveLogger.log_rest")]),
    "mlflow_end": ("MLflow end tags + set_terminated", True,
                   [("sweeper.tracking.mlflow_run", "MlflowRun.set_tags"),
                    ("sweeper.tracking.mlflow_run", "MlflowRun.end")]),
    "artifact_files": ("artifacts: config.yaml, data.json, model.npz", True,
                       [("sweeper.app", "_write_artifacts")]),
    "plot": ("artifacts: loss_curves.png (matplotlib)", True,
             [("sweeper.tracking.plots", "plot_loss_curves")]),
    "artifact_upload": ("artifacts: log_artifacts (copy to the store)", True,
                        [("sweeper.tracking.mlflow_run", "MlflowRun.log_artifacts")]),
    "optuna_report": ("Optuna per-epoch trial.report + should_prune (job side)", True,
                      [("sweeper.sweep.trial_link", "TrialLink.report")]),
    "optuna_ask_tell": ("Optuna ask (+ suggest, compose) / tell / progress line", True,
                        [("sweeper.sweep.loop", "TrialLoop._ask"),
                         ("sweeper.sweep.loop", "TrialLoop._tell")]),
    "optuna_loop": ("Optuna loop bookkeeping (orphans, counts, heartbeat)", True,
                    [("sweeper.sweep.loop", "TrialLoop.loop"),
                     ("sweeper.sweep.study", "Heartbeat.__enter__"),
                     ("sweeper.sweep.study", "Heartbeat.__exit__")]),
    "sweep_start": ("sweep start: validate space, storage, MLflow, study, parent run", False,
                    [("sweeper.sweep.optuna_sweeper", "OptunaSweeperImpl._sweep")]),
    "sweep_finish": ("sweep finish: best trial + Optuna plots on the parent run", False,
                     [("sweeper.sweep.optuna_sweeper", "OptunaSweeperImpl._finish")]),
}
UNATTRIBUTED = "unattributed"
UNATTRIBUTED_TEXT = "unattributed: interpreter start, imports, Hydra start-up"


# --- the child: the sweep with spans ------------------------------------------------------------


class Spans:
    """Self time per part: a span's duration minus the spans that ran nested inside it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[float]] = []  # [time spent in nested spans] per open span

    def wrap(self, part: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            self._stack.append([0.0])
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                nested = self._stack.pop()[0]
                self.seconds[part] = self.seconds.get(part, 0.0) + took - nested
                self.calls[part] = self.calls.get(part, 0) + 1
                if self._stack:
                    self._stack[-1][0] += took
        return timed


def _install(spans: Spans) -> None:
    # Hydra's plugin scan re-executes the modules it finds (BasicLauncher's among them): let it
    # run first, so the classes wrapped here are the ones Hydra instantiates.
    from hydra.core.plugins import Plugins

    Plugins.instance()
    for part, (_, _, targets) in PARTS.items():
        for module_name, path in targets:
            owner = importlib.import_module(module_name)
            *outer, name = path.split(".")
            for attr in outer:
                owner = getattr(owner, attr)
            setattr(owner, name, spans.wrap(part, getattr(owner, name)))


def child(spans_file: str, overrides: list[str]) -> None:
    started = time.perf_counter()
    spans = Spans()
    _install(spans)

    def dump() -> None:
        Path(spans_file).write_text(json.dumps(
            {"seconds": spans.seconds, "calls": spans.calls, "in_process": time.perf_counter() - started}))

    atexit.register(dump)
    from sweeper.app import main
    from sweeper.cli import run_main

    sys.argv = ["sweeper", "-m", *overrides]
    run_main(main)


# --- the parent: run, read back, report -------------------------------------------------------


def _sweep_overrides(folder: Path, trials: int, epochs: int, extra: list[str]) -> list[str]:
    return [
        f"hydra.sweeper.n_trials={trials}",
        f"train.epochs={epochs}",
        f"mlflow.tracking_uri=sqlite:///{folder}/mlflow.db",
        f"hydra.sweeper.storage={folder}/optuna.log",  # the default kind: a journal file
        f"hydra.sweep.dir={folder}/multirun",
        *extra,
    ]


def _train_seconds(folder: Path) -> tuple[float, dict[str, int]]:
    """Sum of the trials' train_seconds and the count of trials per state, from MLflow."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
    total, states = 0.0, {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=10000):
            if "sweeper.trial" not in run.data.tags:
                continue
            total += run.data.metrics.get("train_seconds", 0.0)
            state = run.data.tags.get("sweeper.state", "?")
            states[state] = states.get(state, 0) + 1
    return total, states


def measure_sweep(trials: int, epochs: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as tmp:
        folder = Path(tmp)
        spans_file = folder / "spans.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spans_file), "--",
                   *_sweep_overrides(folder, trials, epochs, extra)]
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0 or not spans_file.exists():
            raise SystemExit(f"the sweep failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        recorded = json.loads(spans_file.read_text())
        train_seconds, states = _train_seconds(folder)
    parts = {part: recorded["seconds"].get(part, 0.0) for part in PARTS}
    parts[UNATTRIBUTED] = max(0.0, wall - sum(parts.values()))
    training = parts["training"]
    overhead = wall - training
    n = sum(states.values()) or trials
    per_trial = {part: parts[part] / n for part, (_, every_trial, _) in PARTS.items()
                 if every_trial and part != "training"}
    dataset = next((o.split("=", 1)[1] for o in extra if o.startswith("data=")), "car_prices")
    return {
        "trials": n,
        "dataset": dataset,
        "epochs": epochs,
        "states": states,
        "overrides": extra,
        "wall_seconds": wall,
        "train_seconds": train_seconds,
        "training_seconds": training,
        "overhead_seconds": overhead,
        "overhead_fraction": overhead / wall,
        "overhead_per_trial_seconds": overhead / n,
        "parts_seconds": parts,
        "per_trial_seconds": per_trial,
        "calls": recorded["calls"],
    }


def measure_help(repeats: int) -> dict:
    """Median wall time of ``python -m sweeper --help`` and the heavy libraries it imports."""
    command = [sys.executable, "-m", "sweeper", "--help"]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    traced = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    imported, top = set(), []
    for line in traced.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (field.strip() for field in line.split("|"))
        if not cumulative.isdigit():
            continue
        imported.add(name.split(".")[0])
        if not line.split("|")[2].startswith("  "):  # a top-level import (no indentation)
            top.append((name, int(cumulative) / 1e6))
    top.sort(key=lambda item: -item[1])
    return {
        "median_seconds": statistics.median(times),
        "runs_seconds": times,
        "heavy_imported": sorted(name for name in HEAVY if name in imported),
        "top_imports_seconds": dict(top[:8]),
    }


def _table(sweep: dict, help_: dict) -> str:
    n = sweep["trials"]
    lines = [
        f"sweep: {n} trials x {sweep['epochs']} epochs on {sweep['dataset']} "
        f"({', '.join(f'{v} {k}' for k, v in sorted(sweep['states'].items()))})"
        + (f", overrides {' '.join(sweep['overrides'])}" if sweep["overrides"] else ""),
        f"  wall {sweep['wall_seconds']:.2f} s   sum of train_seconds (MLflow) {sweep['train_seconds']:.2f} s"
        f"   training without callbacks {sweep['training_seconds']:.2f} s",
        f"  overhead {sweep['overhead_seconds']:.2f} s = {100 * sweep['overhead_fraction']:.1f}% of wall "
        f"(target <= {100 * TARGET_OVERHEAD_FRACTION:.0f}%), {1000 * sweep['overhead_per_trial_seconds']:.0f} ms per trial",
        "",
        f"  {'part':<72}{'total s':>9}{'ms/trial':>10}{'% wall':>8}",
    ]
    for part, seconds in sweep["parts_seconds"].items():
        text = PARTS[part][0] if part in PARTS else UNATTRIBUTED_TEXT
        lines.append(f"  {text:<72}{seconds:>9.3f}{1000 * seconds / n:>10.1f}"
                     f"{100 * seconds / sweep['wall_seconds']:>8.1f}")
    lines += [
        "",
        f"python -m sweeper --help: median {help_['median_seconds']:.2f} s of {len(help_['runs_seconds'])} runs "
        f"(target < {TARGET_HELP_SECONDS:.0f} s); heavy imports: {', '.join(help_['heavy_imported']) or 'none'}",
        "  largest top-level imports: "
        + ", ".join(f"{name} {1000 * s:.0f} ms" for name, s in help_["top_imports_seconds"].items()),
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30, help="trials in the sweep (default 30)")
    parser.add_argument("--epochs", type=int, default=200, help="train.epochs (default 200)")
    parser.add_argument("--help-runs", type=int, default=7, help="runs of --help (median)")
    parser.add_argument("--quick", action="store_true", help="3 trials x 5 epochs, 3 --help runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", metavar="SPANS_FILE", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the sweep (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.overrides)
        return 0
    if args.quick:
        args.trials, args.epochs, args.help_runs = 3, 5, 3
    sweep = measure_sweep(args.trials, args.epochs, args.overrides)
    help_ = measure_help(args.help_runs)
    if args.json:
        print(json.dumps({"sweep": sweep, "help": help_}, indent=1))
    else:
        print(_table(sweep, help_))
    return 0


if __name__ == "__main__":
    sys.exit(main())
