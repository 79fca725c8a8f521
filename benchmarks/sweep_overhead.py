"""Where a sweep's time goes besides training: the per-trial overhead, part by part.

Runs ``python -m sweeper -m`` (the default search space, ``train.epochs`` fixed, N trials) on
car_prices in a temporary folder with its own MLflow SQLite file and Optuna journal file, in a
child process, and reports:

- ``wall``: the child's wall time, interpreter start and imports included;
- ``train_seconds``: the sum of the trials' ``train_seconds`` read back from MLflow (this is
  ``fit`` including its per-epoch callbacks: curve buffering and the Optuna report);
- ``training``: the time inside ``fit`` minus those callbacks, the sweep's useful work;
- ``overhead = wall − training``, its share of the wall time, and its parts.

The parts are real ``time.perf_counter`` spans: before the sweep starts, the child wraps the
functions that do each part (the launcher's ``launch``, ``sweeper.app.run``, ``load_dataset``,
``fit``, the ``MlflowRun`` methods, ``plot_loss_curves``, ``TrialLink.report``, the sweeper's
ask/tell, ...) and records each span's self time (its duration minus the spans nested in it),
so the parts never overlap and add up to at most the wall time; what no span covers
(interpreter start, imports, Hydra's start-up, logging) is the ``unattributed`` part. Nothing
in the product is changed by the benchmark; it runs the default launcher with ``n_jobs=1``
(``sweeper.launcher.local``, in-process), where every job shares the child process.

Then the cold start of ``python -m sweeper --help``: the median wall time of several runs, and
which heavy libraries ``python -X importtime`` shows it importing (MLflow and matplotlib must
not be among them).

Beside ours, on the same trials budget, epochs and data, interleaved round by round (ours, the
script, the plugin; again), each in its own temporary folder and child process, with the same
spans around the functions they share (``fit`` and its callbacks, so training is measured the
same way for all):

- ``script``: ``benchmarks/peers/plain_optuna_mlflow.py``, the sweep written by hand with Optuna
  (``study.optimize``, per-epoch ``trial.report`` + ``should_prune``, median pruner, a journal
  file as ours) and MLflow (a nested run per trial: params, curves, final metrics, PNG);
- ``plugin``: the PyPI Hydra sweeper ``hydra-optuna-mlflow-sweeper`` (no pruning, SQLite, the
  only persistent storage it takes) running our task function through
  ``benchmarks/peers/hydra_plugin_task.py``. ``make bench`` (``--install-peers``) pip-installs it
  (``--no-deps``: everything it imports is ours already) into a cache folder, put on PYTHONPATH
  for its child only: Hydra imports every module under ``hydra_plugins`` at start-up, and this
  one imports MLflow and Optuna, so installed beside ours it would add ~1.5 s to every
  ``python -m sweeper``, ``--help`` included.

The schedule is fixed to constant for every contender (``schedule=constant``; the plugin cannot
do conditional keys such as ``schedule.gamma``); the search space is ``conf/search/default.yaml``
without its schedule keys. Per contender: wall, training (inside ``fit``, without callbacks),
framework ms per trial = (wall − training) / trials, epochs trained, trials per state (from the
Optuna storage), and launch → trial 0 (the child's spawn to the first trial's ``datetime_start``
in the Optuna storage: when the framework starts its first trial, for all alike). Medians over
the rounds, and the issue's targets with PASS/MISS.

    python benchmarks/sweep_overhead.py                    # 3 rounds x (ours, script, plugin), 30 trials x 200 epochs
    python benchmarks/sweep_overhead.py --no-peers --rounds 1 --trials 10 -- hydra.sweeper.pruner=none
    python benchmarks/sweep_overhead.py --quick --json     # 1 round, 3 trials x 5 epochs; one JSON object
"""
from __future__ import annotations

import argparse
import atexit
import datetime
import functools
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
TARGET_OVERHEAD_FRACTION = 0.10
TARGET_HELP_SECONDS = 1.0
TARGET_FRAMEWORK_MS = 295.0   # issue 17: framework ms per trial, and below the peer plugin's
TARGET_LAUNCH_SECONDS = 3.0   # issue 17: launch -> trial 0
HEAVY = ("mlflow", "matplotlib", "optuna", "sqlalchemy", "pandas", "numpy", "scipy")
CONTENDERS = {
    "ours": "python -m sweeper -m",
    "script": "plain Optuna + MLflow script",
    "plugin": "hydra-optuna-mlflow-sweeper",
}
PLUGIN_REQUIREMENT = "hydra-optuna-mlflow-sweeper==0.1.3"
PLUGIN_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweeper-benchmarks"
FIXED_SCHEDULE = "schedule=constant"  # every contender; the plugin cannot sweep conditional keys

# part -> (description, [(module, attribute path), ...]); each listed callable becomes a span.
# Order is the table's order. "per_trial" parts happen once per trial, the others once a sweep.
PARTS: dict[str, tuple[str, bool, list[tuple[str, str]]]] = {
    "hydra_job": ("Hydra job setup (the job config, run_job, .hydra/ files, logging)", True,
                  [("sweeper.launcher.local", "LocalLauncher.launch"),
                   ("sweeper.sweep.local_launcher", "LocalLauncher.launch"),  # before issue 25
                   ("hydra._internal.core_plugins.basic_launcher", "BasicLauncher.launch")]),
    "job_other": ("job: validate + resolve config, network, final metrics", True,
                  [("sweeper.app.job", "run"), ("sweeper.app", "run")]),
    "data": ("data loading (CSV, split, scalers)", True, [("sweeper.data", "load_dataset")]),
    # A trial trains through fit_folds (its K fold networks, or one); a script through fit.
    "training": ("training (fit, without its callbacks)", True, [("sweeper.train", "fit_folds")]),
    "mlflow_run": ("MLflow run creation (experiment lookup, create_run, env tags)", True,
                   [("sweeper.app.job", "_start_mlflow_run"), ("sweeper.app", "_start_mlflow_run")]),
    "mlflow_params": ("MLflow params (log_batch)", True,
                      [("sweeper.tracking.mlflow_run", "MlflowRun.log_params")]),
    "mlflow_metrics": ("MLflow metrics (per-epoch buffering + batched sends + final)", True,
                       [("sweeper.tracking.mlflow_run", "MlflowRun.log_metrics"),
                        ("sweeper.tracking.mlflow_run", "MlflowRun.flush"),
                        ("sweeper.app.job", "_CurveLogger.__call__"), ("sweeper.app", "_CurveLogger.__call__"),
                        ("sweeper.app.job", "_CurveLogger.log_rest"), ("sweeper.app", "_CurveLogger.log_rest")]),
    "mlflow_end": ("MLflow end tags + set_terminated", True,
                   [("sweeper.tracking.mlflow_run", "MlflowRun.set_tags"),
                    ("sweeper.tracking.mlflow_run", "MlflowRun.end")]),
    "artifact_files": ("artifacts: config.yaml, data.json, model.npz", True,
                       [("sweeper.app.artifacts", "write_artifacts"), ("sweeper.app", "_write_artifacts")]),
    "plot": ("artifacts: loss_curves.png (ours: handed to the drawing process)", True,
             [("sweeper.tracking.plots", "plot_loss_curves"),
              ("sweeper.launcher.local", "Drawing.loss_curves"),
              ("sweeper.tracking.plots", "draw_loss_curves_later")]),  # before issue 25
    "artifact_upload": ("artifacts: log_artifacts (copy to the store)", True,
                        [("sweeper.tracking.mlflow_run", "MlflowRun.log_artifacts")]),
    "optuna_report": ("Optuna per-epoch trial.report + should_prune (job side)", True,
                      [("sweeper.sweep.trial_link", "TrialLink.report"),
                       ("sweeper.app.job", "_objective_value"), ("sweeper.app", "_objective_value")]),
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

# The same parts, where they exist, for the peers. The plugin runs our task function: the same
# job-side spans as ours, and its own sweep loop as one part.
PLUGIN_PARTS = {part: PARTS[part] for part in (
    "hydra_job", "job_other", "data", "training", "mlflow_run", "mlflow_params", "mlflow_metrics",
    "mlflow_end", "artifact_files", "plot", "artifact_upload")} | {
    "plugin_sweep": ("the plugin's sweep: study, MLflow parent run, ask/tell, best trial", False,
                     [("hydra_plugins.hydra_optuna_sweeper.mlflow_optuna_sweeper", "MLflowOptunaSweeper.sweep")]),
}
# The script's functions (benchmarks/peers/plain_optuna_mlflow.py); sweeper.* first, so the
# script's own `from sweeper.train import fit` binds the wrapped function.
SCRIPT_PARTS: dict[str, tuple[str, bool, list[tuple[str, str]]]] = {
    "data": PARTS["data"],
    "training": ("training (fit, without its callbacks)", True, [("sweeper.train", "fit")]),
    "job_other": ("objective: suggest, network, final metrics, MLflow start/end run", True,
                  [("plain_optuna_mlflow", "objective"), ("plain_optuna_mlflow", "train"),
                   ("plain_optuna_mlflow", "final_metrics")]),
    "mlflow_trial": ("MLflow params, curves (log_batch), final metrics, PNG upload", True,
                     [("plain_optuna_mlflow", "log_trial")]),
    "plot": ("artifacts: loss_curves.png (matplotlib)", True, [("plain_optuna_mlflow", "plot_loss_curves")]),
    "optuna_report": ("Optuna per-epoch trial.report + should_prune", True,
                      [("plain_optuna_mlflow", "PruningReporter.__call__")]),
    "optuna_ask": ("Optuna ask (tell is not wrapped: unattributed)", True, [("optuna.study", "Study.ask")]),
    "script_main": ("main: MLflow experiment, study, parent run, Optuna's tell and loop", False,
                     [("plain_optuna_mlflow", "main")]),
}
CONTENDER_PARTS = {"ours": PARTS, "script": SCRIPT_PARTS, "plugin": PLUGIN_PARTS}

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


def _install(spans: Spans, parts: dict) -> None:
    targets = [(part, module, path) for part, (_, _, found) in parts.items() for module, path in found]
    if any(module.startswith("hydra") for _, module, _ in targets):
        # Hydra's plugin scan re-executes the modules it finds (BasicLauncher's among them): let
        # it run first, so the classes wrapped here are the ones Hydra instantiates.
        from hydra.core.plugins import Plugins

        Plugins.instance()
    for part, module_name, path in targets:
        # A target the code under test lacks is skipped: an older checkout measured for a
        # before/after table (PYTHONPATH=<checkout>) has the parts it has.
        try:
            owner = importlib.import_module(module_name)
        except ImportError:
            continue
        *outer, name = path.split(".")
        for attr in outer:
            owner = getattr(owner, attr, None)
        if owner is None or not hasattr(owner, name):
            continue
        setattr(owner, name, spans.wrap(part, getattr(owner, name)))


def child(spans_file: str, contender: str, arguments: list[str]) -> None:
    started = time.perf_counter()
    spans = Spans()
    if contender != "ours":
        sys.path.insert(0, str(PEERS))
    _install(spans, CONTENDER_PARTS[contender])

    def dump() -> None:
        Path(spans_file).write_text(json.dumps(
            {"seconds": spans.seconds, "calls": spans.calls, "in_process": time.perf_counter() - started}))

    atexit.register(dump)
    if contender == "script":
        import plain_optuna_mlflow

        plain_optuna_mlflow.main(arguments)
    elif contender == "plugin":
        import hydra_plugin_task

        sys.argv = [str(PEERS / "hydra_plugin_task.py"), "-m", *arguments]
        hydra_plugin_task.task()
    else:
        from sweeper import cli
        from sweeper.app import main

        sys.argv = ["sweeper", "-m", *arguments]
        getattr(cli, "run_command", cli.run_main)(main)  # what python -m sweeper runs


# --- the parent: run, read back, report -------------------------------------------------------


def _sweep_overrides(folder: Path, trials: int, epochs: int, extra: list[str]) -> list[str]:
    return [
        f"hydra.sweeper.n_trials={trials}",
        f"train.epochs={epochs}",
        f"mlflow.tracking_uri=sqlite:///{folder}/mlflow.db",
        f"hydra.sweeper.storage={folder}/optuna.log",  # the default kind: a journal file
        f"hydra.sweep.dir={folder}/multirun",
        # The peers' sweep: one network a trial and the best trial's model (the defaults on
        # car_prices cross-validate over 5 folds and average the top 5: docs/cross-validation.md).
        "split.folds=1",
        "hydra.sweeper.ensemble=1",
        *extra,
    ]


def _search_space() -> list[str]:
    """conf/search/default.yaml's space as command-line sweep overrides, without the schedule's
    keys (the schedule is fixed to constant, which has none)."""
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "search" / "default.yaml"))["params"]
    return [f"{key}={value}" for key, value in params.items() if key.split(".")[0] != "schedule"]


def _plugin_overrides(folder: Path, trials: int, epochs: int) -> list[str]:
    uri = f"sqlite:///{folder}/mlflow.db"
    settings = "hydra.sweeper.optuna_config"
    return [
        "hydra/sweeper=mlflow_optuna",
        "~search",  # our space's config group targets our sweeper's keys; the space goes below
        FIXED_SCHEDULE,
        f"{settings}.n_trials={trials}",
        f"{settings}.storage=sqlite:///{folder}/optuna.db",
        f"{settings}.study_name=car_prices",
        f"++{settings}.sampler={{_target_:optuna.samplers.TPESampler,seed:0}}",
        # The plugin creates its MLflow study run (and passes its id to the jobs) only with these.
        f"+trainer.logger.tracking_uri={uri}",
        "+trainer.logger.experiment_name=car_prices",
        f"train.epochs={epochs}",
        f"mlflow.tracking_uri={uri}",
        f"hydra.sweep.dir={folder}/multirun",
        *_search_space(),
    ]


def _script_arguments(folder: Path, trials: int, epochs: int) -> list[str]:
    return ["--trials", str(trials), "--epochs", str(epochs),
            "--tracking-uri", f"sqlite:///{folder}/mlflow.db", "--storage", str(folder / "optuna.log")]


def install_plugin(cache: Path) -> Path:
    """Pip-install the peer plugin (without its dependencies) into ``cache``, once; ``make bench``
    does this, so that no measurement (and no test) reaches a package index."""
    target = cache / PLUGIN_REQUIREMENT.replace("==", "-")
    if (target / "hydra_plugins" / "hydra_optuna_sweeper").is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=cache))
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(partial), PLUGIN_REQUIREMENT], capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise SystemExit(f"could not install {PLUGIN_REQUIREMENT} into {cache}:\n{done.stderr[-2000:]}")
    try:
        partial.rename(target)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return target


def plugin_path(cache: Path) -> Path:
    """The folder holding the peer plugin, installed by ``--install-peers``, to put on the plugin
    child's PYTHONPATH; its declared dependencies are checked against ours."""
    target = cache / PLUGIN_REQUIREMENT.replace("==", "-")
    if not (target / "hydra_plugins" / "hydra_optuna_sweeper").is_dir():
        raise SystemExit(f"error: the peer plugin {PLUGIN_REQUIREMENT} is not installed in {cache}: "
                         f"`make bench` installs it (or --install-peers; --no-peers runs ours alone)")
    for line in _unmet_requirements(target):
        print(f"note: {PLUGIN_REQUIREMENT} declares {line}", file=sys.stderr)
    return target


def _unmet_requirements(folder: Path) -> list[str]:
    """The plugin's Requires-Dist (no extras) that this environment does not satisfy."""
    from importlib import metadata

    from packaging.requirements import Requirement

    unmet = []
    for info in folder.glob("*.dist-info/METADATA"):
        for line in info.read_text().splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            requirement = Requirement(line.split(":", 1)[1].strip())
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                version = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                unmet.append(f"{requirement}: not installed here (it does not import it)")
                continue
            if not requirement.specifier.contains(version, prereleases=True):
                unmet.append(f"{requirement}: {version} installed here")
    return unmet


def _mlflow_trials(folder: Path) -> dict[str, float]:
    """Sums over the trials' MLflow runs (the runs nested under a sweep's run)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")
    sums = {"train_seconds": 0.0, "epochs_run": 0.0}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=10000):
            if "mlflow.parentRunId" in run.data.tags:
                for key in sums:
                    sums[key] += run.data.metrics.get(key, 0.0)
    return sums


def _optuna_trials(storage: str) -> tuple[dict[str, int], datetime.datetime | None]:
    """Trials per state, and the first trial's start, from the study's storage."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(storage))
    states: dict[str, int] = {}
    first = None
    for name in optuna.get_all_study_names(storage):
        for trial in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
            states[trial.state.name] = states.get(trial.state.name, 0) + 1
            if trial.datetime_start is not None and (first is None or trial.datetime_start < first):
                first = trial.datetime_start
    return states, first


def measure(contender: str, trials: int, epochs: int, extra: list[str], plugin: Path | None = None) -> dict:
    """One run of ``contender`` in a fresh folder: its wall time, spans and trials."""
    with tempfile.TemporaryDirectory(prefix=f"sweep-overhead-{contender}-") as tmp:
        folder = Path(tmp)
        spans_file = folder / "spans.json"
        arguments, storage = {
            "ours": (_sweep_overrides(folder, trials, epochs, extra), str(folder / "optuna.log")),
            "script": (_script_arguments(folder, trials, epochs), str(folder / "optuna.log")),
            "plugin": (_plugin_overrides(folder, trials, epochs), f"sqlite:///{folder}/optuna.db"),
        }[contender]
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spans_file),
                   "--contender", contender, "--", *arguments]
        env = dict(os.environ)
        env.pop("MLFLOW_TRACKING_URI", None)
        if plugin is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin), env.get("PYTHONPATH")]))
        launched = datetime.datetime.now()
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0 or not spans_file.exists():
            raise SystemExit(f"{CONTENDERS[contender]} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        recorded = json.loads(spans_file.read_text())
        logged = _mlflow_trials(folder)
        states, first_start = _optuna_trials(storage)
    parts_defined = CONTENDER_PARTS[contender]
    parts = {part: recorded["seconds"].get(part, 0.0) for part in parts_defined}
    parts[UNATTRIBUTED] = max(0.0, wall - sum(parts.values()))
    training = parts["training"]
    overhead = wall - training
    n = sum(states.values()) or trials
    per_trial = {part: parts[part] / n for part, (_, every_trial, _) in parts_defined.items()
                 if every_trial and part != "training"}
    dataset = next((o.split("=", 1)[1] for o in extra if o.startswith("data=")), "car_prices")
    return {
        "contender": contender,
        "trials": n,
        "dataset": dataset if contender == "ours" else "car_prices",
        "epochs": epochs,
        "epochs_trained": int(logged["epochs_run"]),
        "states": states,
        "overrides": extra if contender == "ours" else [],
        "wall_seconds": wall,
        "train_seconds": logged["train_seconds"],
        "training_seconds": training,
        "overhead_seconds": overhead,
        "overhead_fraction": overhead / wall,
        "overhead_per_trial_seconds": overhead / n,
        "framework_ms_per_trial": 1000 * overhead / n,
        "launch_to_first_trial_seconds": (first_start - launched).total_seconds() if first_start else None,
        "parts_seconds": parts,
        "per_trial_seconds": per_trial,
        "calls": recorded["calls"],
    }


def summarize(runs: list[dict]) -> dict:
    """Medians over the rounds of one contender; ``states`` of the median-wall round."""
    def median(key):
        values = [run[key] for run in runs if run[key] is not None]
        return statistics.median(values) if values else None

    middle = median_run(runs)
    parts = {part: statistics.median(run["parts_seconds"][part] for run in runs) for part in middle["parts_seconds"]}
    return {
        "rounds": len(runs),
        "trials": middle["trials"],
        "states": middle["states"],
        "states_vary": any(run["states"] != middle["states"] for run in runs),
        **{key: median(key) for key in ("wall_seconds", "training_seconds", "train_seconds", "framework_ms_per_trial",
                                        "epochs_trained", "launch_to_first_trial_seconds")},
        "wall_seconds_each": [run["wall_seconds"] for run in runs],
        "parts_ms_per_trial": {part: 1000 * seconds / middle["trials"] for part, seconds in parts.items()},
    }


def median_run(runs: list[dict]) -> dict:
    """The round whose wall time is the median (the lower one of an even count): a real run."""
    ordered = sorted(runs, key=lambda run: run["wall_seconds"])
    return ordered[(len(ordered) - 1) // 2]


def targets(summary: dict) -> list[dict]:
    """Issue 17's targets, each with the measured value and PASS/MISS."""
    ours = summary["ours"]
    found = [{"target": f"ours framework ms/trial <= {TARGET_FRAMEWORK_MS:.0f}",
              "value": ours["framework_ms_per_trial"], "pass": ours["framework_ms_per_trial"] <= TARGET_FRAMEWORK_MS}]
    if "plugin" in summary:
        ratio = ours["framework_ms_per_trial"] / summary["plugin"]["framework_ms_per_trial"]
        found.append({"target": "ours framework ms/trial below the peer plugin's (ratio < 1)",
                      "value": ratio, "pass": ratio < 1})
    launch = ours["launch_to_first_trial_seconds"]
    found.append({"target": f"ours launch -> trial 0 <= {TARGET_LAUNCH_SECONDS:.0f} s",
                  "value": launch, "pass": launch is not None and launch <= TARGET_LAUNCH_SECONDS})
    return found


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
        f"our sweep, parts (the median-wall round): {n} trials x {sweep['epochs']} epochs on {sweep['dataset']} "
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


def _comparison(summary: dict, found: list[dict]) -> str:
    rounds = next(iter(summary.values()))["rounds"]
    lines = [
        f"side by side, interleaved, {rounds} round(s), medians; {FIXED_SCHEDULE} for all "
        "(framework = wall - training, per trial)",
        f"  {'contender':<30}{'wall s':>8}{'training s':>12}{'framework ms/trial':>20}{'epochs':>8}"
        f"{'complete/pruned/fail':>22}{'launch->trial 0 s':>19}",
    ]
    for name, row in summary.items():
        states = row["states"]
        counts = "/".join(str(states.get(state, 0)) for state in ("COMPLETE", "PRUNED", "FAIL"))
        counts += "*" if row["states_vary"] else ""
        launch = row["launch_to_first_trial_seconds"]
        lines.append(
            f"  {CONTENDERS[name]:<30}{row['wall_seconds']:>8.2f}{row['training_seconds']:>12.2f}"
            f"{row['framework_ms_per_trial']:>20.0f}{row['epochs_trained']:>8.0f}{counts:>22}"
            f"{'-' if launch is None else f'{launch:.2f}':>19}")
    if any(row["states_vary"] for row in summary.values()):
        lines.append("  * the states differed between rounds: the median-wall round's are shown")
    ours = summary["ours"]["framework_ms_per_trial"]
    lines.append("")
    for name, row in summary.items():
        if name != "ours":
            lines.append(f"  ours / {CONTENDERS[name]} framework ms per trial: "
                         f"{ours:.0f} / {row['framework_ms_per_trial']:.0f} = {ours / row['framework_ms_per_trial']:.2f}")
    for target in found:
        value = target["value"]
        shown = "-" if value is None else f"{value:.2f}" if value < 10 else f"{value:.0f}"
        lines.append(f"  {'PASS' if target['pass'] else 'MISS'}  {target['target']}: {shown}")
    parts = sorted({part for row in summary.values() for part in row["parts_ms_per_trial"]},
                   key=lambda part: list(PARTS).index(part) if part in PARTS else len(PARTS) + (part == UNATTRIBUTED))
    if len(summary) > 1:
        lines += ["", f"  {'part, ms per trial (median of rounds; sweep-wide parts spread over the trials)':<82}"
                  + "".join(f"{name:>9}" for name in summary)]
        for part in parts:
            cells = "".join(f"{row['parts_ms_per_trial'][part]:>9.1f}" if part in row["parts_ms_per_trial"]
                            else f"{'':>9}" for row in summary.values())
            text = next((p[part][0] for p in CONTENDER_PARTS.values() if part in p), UNATTRIBUTED_TEXT)
            lines.append(f"  {part + ': ' + text:<82.82}{cells}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30, help="trials in each sweep (default 30)")
    parser.add_argument("--epochs", type=int, default=200, help="train.epochs (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (ours, script, plugin), interleaved (default 3)")
    parser.add_argument("--no-peers", action="store_true", help="run our sweep only")
    parser.add_argument("--peer-cache", type=Path, default=PLUGIN_CACHE,
                        help=f"where the peer plugin is installed (default {PLUGIN_CACHE})")
    parser.add_argument("--install-peers", action="store_true",
                        help="pip-install the peer plugin into --peer-cache and exit (make bench does)")
    parser.add_argument("--help-runs", type=int, default=7, help="runs of --help (median)")
    parser.add_argument("--quick", action="store_true", help="1 round, 3 trials x 5 epochs, 3 --help runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", metavar="SPANS_FILE", help=argparse.SUPPRESS)
    parser.add_argument("--contender", choices=CONTENDERS, default="ours", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for our sweep (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.contender, args.overrides)
        return 0
    if args.install_peers:
        print(f"{PLUGIN_REQUIREMENT}: {install_plugin(args.peer_cache)}", file=sys.stderr)
        return 0
    if args.quick:
        args.trials, args.epochs, args.help_runs, args.rounds = 3, 5, 3, 1
    contenders = ["ours"] if args.no_peers else list(CONTENDERS)
    extra = args.overrides
    if not any(override.startswith("schedule=") for override in extra):
        extra = [FIXED_SCHEDULE, *extra]
    if len(contenders) > 1 and args.overrides:
        print("note: the overrides after -- apply to our sweep only", file=sys.stderr)
    plugin = plugin_path(args.peer_cache) if "plugin" in contenders else None
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for round_ in range(1, args.rounds + 1):
        for name in contenders:
            run = measure(name, args.trials, args.epochs, extra, plugin if name == "plugin" else None)
            runs[name].append(run)
            print(f"round {round_}/{args.rounds}: {CONTENDERS[name]}: wall {run['wall_seconds']:.1f} s, "
                  f"framework {run['framework_ms_per_trial']:.0f} ms/trial", file=sys.stderr)
    summary = {name: summarize(found) for name, found in runs.items()}
    found = targets(summary)
    sweep = median_run(runs["ours"])
    help_ = measure_help(args.help_runs)
    if args.json:
        print(json.dumps({"sweep": sweep, "help": help_, "contenders": summary, "targets": found, "runs": runs},
                         indent=1, default=str))
    else:
        print(_comparison(summary, found))
        print()
        print(_table(sweep, help_))
    return 0


if __name__ == "__main__":
    sys.exit(main())
