"""Does the sweep's winner generalise? The test error of the model a sweep hands the user, beside peers.

For each table and seed S the rows are the ones ``python -m sweeper data=TABLE seed=S`` uses
(``seed`` also sets ``split.seed``: 70% train / 10% validation / 20% test, stratified for
classes). Each contender is scored on the same test rows, from the CSV's own target (RMSE in
the target's units; log loss and accuracy for classes), so no number depends on what a run logged:

- ``single``: ``python -m sweeper -m data=TABLE seed=S`` with ``split.folds=1`` (one validation
  split; on code without ``split.folds`` the override is left out: that sweep is the only kind);
- ``folds``: the same sweep with ``split.folds=5`` (each trial trains 5 fold networks over the
  train+validation rows and is judged on their mean);
- ``ensemble``: ``split.folds=5 hydra.sweeper.ensemble=5`` (the parent run's model averages the
  top 5 trials);
- ``default``: one plain ``python -m sweeper data=TABLE seed=S`` (no sweep): the bar a sweep
  must never fall below.

A sweep's score is its parent run's MLflow model (``runs:/PARENT/model``, what the user gets),
a plain run's its own ``model``, each predicting the raw test rows of the CSV. The peers are
fitted on exactly the arrays ``sweeper.data.load_dataset`` encodes for that split, the training
and validation rows pooled (they cross-validate themselves):

- ``mlp-cv``: scikit-learn's ``RandomizedSearchCV`` over ``MLPRegressor``/``MLPClassifier``,
  5 folds, 40 candidates (``--candidates``), in a space like ``conf/search/default.yaml`` (the
  regressor's target standardised as ours is);
- ``hgb``: ``HistGradientBoostingRegressor``/``Classifier`` with its defaults.

Sweeps and runs each get a throw-away folder (MLflow store, Optuna journal, Hydra output).
Nothing is asserted: car_prices has 161 test rows, penguins 68, digits 359.

    python benchmarks/cv_selection.py                     # 3 tables x seeds 0 1 2 x 40 trials (hours)
    python benchmarks/cv_selection.py --data car_prices --seeds 0 --trials 6 --variants single default
    python benchmarks/cv_selection.py --data digits --json cv.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

# Before NumPy loads: the peers fit with one BLAS thread per job, as our sweep's workers train.
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")

import numpy as np  # noqa: E402

#: table -> (task, the metric the table's verdict is judged on; lower is better)
TABLES = {"car_prices": ("regression", "rmse"), "penguins": ("regression", "rmse"),
          "digits": ("classification", "log_loss")}
#: sweep variant -> its overrides beside the data, seed and stores; `default` is a plain run
VARIANTS = {"single": ["split.folds=1"], "folds": ["split.folds=5"],
            "ensemble": ["split.folds=5", "hydra.sweeper.ensemble=5"], "default": None}
PEERS = ("mlp-cv", "hgb")
METRICS = {"regression": ("rmse",), "classification": ("log_loss", "accuracy")}
FORMATS = {"rmse": "{:.1f}", "log_loss": "{:.4f}", "accuracy": "{:.4f}"}


def compose(table: str, seed: int):
    """The config ``python -m sweeper data=TABLE seed=SEED`` runs with."""
    from hydra import compose as hydra_compose, initialize_config_dir

    import sweeper.config  # noqa: F401  registers the schema and the data_dir resolver
    from sweeper import CONF_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return hydra_compose(config_name="config", overrides=[f"data={table}", f"seed={seed}"])


def held_out_rows(cfg, dataset) -> tuple:
    """(the test rows of the CSV as a user would pass them, without the target; the truth: the
    target in its units, or class codes in ``dataset.classes`` order)."""
    from sweeper.data import read_csv

    rows = read_csv(cfg.data.path, sep=cfg.data.sep, encoding=cfg.data.encoding,
                    na_values=list(cfg.data.na_values)).iloc[dataset.indices["test"]]
    target = rows.pop(dataset.target)
    if dataset.task == "classification":
        code = {name: k for k, name in enumerate(dataset.classes)}
        truth = target.astype(str).map(code).to_numpy()
        expected = dataset.codes("test")
    else:
        truth = target.to_numpy(dtype=float)
        expected = dataset.preprocessor.inverse_target(dataset.y_test).ravel()
    if not np.allclose(truth, expected):  # the file's rows and the arrays' rows must be the same rows
        raise SystemExit(f"cv_selection: {cfg.data.name}: the CSV's test rows do not match dataset.indices['test']")
    return rows.reset_index(drop=True), truth


def score(task: str, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE of ``predicted`` values (n,), or log loss and accuracy of ``predicted`` class
    probabilities (n, K), against ``truth``."""
    from sklearn.metrics import log_loss

    if task == "regression":
        return {"rmse": float(np.sqrt(np.mean((np.ravel(predicted) - truth) ** 2)))}
    return {"log_loss": float(log_loss(truth, predicted, labels=range(predicted.shape[1]))),
            "accuracy": float(np.mean(np.argmax(predicted, axis=1) == truth))}


def run_sweeper(args: list[str], folder: Path, label: str) -> float:
    """Run ``python -m sweeper ARGS`` in ``folder``; its wall seconds. A failure ends the benchmark
    with one line naming ``label`` and the last line of the command's stderr."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "sweeper", *args], cwd=folder, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SystemExit(f"cv_selection: {label} failed: {last}")
    return time.monotonic() - started


def model_uri(tracking_uri: str, experiment: str, sweep: bool) -> str:
    """``runs:/ID/model`` of the sweep's parent run (untagged ``mlflow.parentRunId``, tagged
    ``sweeper.study``), or of the one plain run."""
    from mlflow import MlflowClient

    from sweeper.tracking.tags import PARENT_TAG, STUDY_TAG

    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    if sweep:
        runs = [r for r in runs if PARENT_TAG not in r.data.tags and STUDY_TAG in r.data.tags]
    [run] = runs
    return f"runs:/{run.info.run_id}/model"


def ours(table: str, seed: int, variant: str, overrides: list[str] | None, trials: int, jobs: int,
         rows, truth, task: str, classes: list[str]) -> dict:
    """A variant's test scores and wall seconds: a sweep (``overrides`` a list) or a plain run (None)."""
    import mlflow

    name = f"cv-{table}-{variant}-{seed}"
    with tempfile.TemporaryDirectory(prefix="cv-selection-") as tmp:
        folder = Path(tmp)
        tracking_uri = f"sqlite:///{folder / 'mlflow.db'}"
        args = [f"data={table}", f"seed={seed}", f"mlflow.tracking_uri={tracking_uri}",
                f"mlflow.experiment={name}", f"hydra.run.dir={folder / 'outputs'}"]
        if overrides is not None:
            args = ["-m", *args, *overrides, f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.n_jobs={jobs}",
                    f"hydra.sweeper.study_name={name}", f"hydra.sweeper.storage={folder / 'optuna.log'}",
                    f"hydra.sweep.dir={folder / 'multirun'}"]
        seconds = run_sweeper(args, folder, f"{table} seed {seed} variant {variant}")
        mlflow.set_tracking_uri(tracking_uri)
        model = mlflow.pyfunc.load_model(model_uri(tracking_uri, name, sweep=overrides is not None))
        predicted = model.predict(rows)
    if task == "classification":
        predicted = predicted[[f"probability_{c}" for c in classes]].to_numpy()
    return {**score(task, truth, np.asarray(predicted)), "seconds": seconds}


def mlp_search(task: str, seed: int, jobs: int, candidates: int):
    """RandomizedSearchCV over an MLP in a space like conf/search/default.yaml: widths, activation
    (scikit-learn has no elu or leaky_relu), L2, lr, momentum (Nesterov or not), batch size and a
    schedule. solver='sgd', as ours trains, so the search is compared, not the optimiser; no early
    stopping (ours stops on the validation rows, which the peer pools into its folds)."""
    from scipy.stats import loguniform, uniform
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import RandomizedSearchCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler

    space = {"hidden_layer_sizes": [(32,), (64,), (32, 16), (64, 32)], "activation": ["relu", "tanh"],
             "alpha": [0.0, 1e-5, 1e-4, 1e-3], "learning_rate_init": loguniform(1e-3, 0.1),
             "momentum": uniform(0.0, 0.9), "nesterovs_momentum": [True, False], "batch_size": [16, 32, 64, 128],
             "learning_rate": ["constant", "invscaling", "adaptive"]}
    mlp = dict(solver="sgd", max_iter=200, early_stopping=False, random_state=seed)
    if task == "regression":
        model = TransformedTargetRegressor(MLPRegressor(**mlp), transformer=StandardScaler())
        space, scoring = {f"regressor__{k}": v for k, v in space.items()}, "neg_root_mean_squared_error"
    else:
        model, scoring = MLPClassifier(**mlp), "neg_log_loss"
    return RandomizedSearchCV(model, space, n_iter=candidates, cv=5, scoring=scoring, n_jobs=jobs, random_state=seed)


def peer(name: str, dataset, seed: int, jobs: int, candidates: int, truth: np.ndarray) -> dict:
    """A peer's test scores and wall seconds, fitted on the split's training + validation arrays."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    task = dataset.task
    X = np.vstack([dataset.X_train, dataset.X_val])
    if task == "regression":
        y = dataset.preprocessor.inverse_target(np.vstack([dataset.y_train, dataset.y_val])).ravel()
    else:
        y = np.concatenate([dataset.codes("train"), dataset.codes("val")])
    if name == "mlp-cv":
        model = mlp_search(task, seed, jobs, candidates)
    else:
        model = (HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier)(
            random_state=seed)
    started = time.monotonic()
    with warnings.catch_warnings():  # diverged and unconverged candidates: the search scores them, as ours FAILs
        warnings.simplefilter("ignore")
        model.fit(X, y)
    seconds = time.monotonic() - started
    predicted = model.predict(dataset.X_test) if task == "regression" else model.predict_proba(dataset.X_test)
    return {**score(task, truth, predicted), "seconds": seconds}


def overrides_for(variant: str, cfg) -> list[str] | None:
    """The variant's overrides; ``split.folds=1`` left out where the config has no ``split.folds``
    (today's only kind of sweep)."""
    from omegaconf import OmegaConf

    overrides = VARIANTS[variant]
    if overrides is not None and OmegaConf.select(cfg, "split.folds", default=None) is None:
        overrides = [o for o in overrides if o != "split.folds=1"]
    return overrides


def measure(table: str, seeds: list[int], variants: list[str], trials: int, jobs: int, candidates: int) -> list[dict]:
    """One result row per (seed, contender): {table, seed, name, <metrics>, seconds}."""
    from sweeper.app.job import load_data

    results = []
    for seed in seeds:
        cfg = compose(table, seed)
        dataset = load_data(cfg)
        rows, truth = held_out_rows(cfg, dataset)
        for name in [*variants, *PEERS]:
            if name in PEERS:
                result = peer(name, dataset, seed, jobs, candidates, truth)
            else:
                result = ours(table, seed, name, overrides_for(name, cfg), trials, jobs, rows, truth,
                              dataset.task, dataset.classes)
            results.append({"table": table, "seed": seed, "name": name, **result})
            shown = " ".join(f"{m} {FORMATS[m].format(result[m])}" for m in METRICS[dataset.task])
            print(f"{table} seed {seed} {name}: {shown} ({result['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return results


def table_lines(results: list[dict], table: str, metric: str, seeds: list[int]) -> list[str]:
    """The table of one metric: a row per contender, a column per seed, the mean, wall seconds a seed."""
    fmt = FORMATS[metric]
    lines = [f"{table}: test {metric}" + ("  (higher is better)" if metric == "accuracy" else "  (lower is better)"),
             f"{'':<10}" + "".join(f"{'seed ' + str(s):>11}" for s in seeds) + f"{'mean':>11}{'s/seed':>9}"]
    for name in dict.fromkeys(r["name"] for r in results if r["table"] == table):
        mine = {r["seed"]: r for r in results if r["table"] == table and r["name"] == name}
        values = [mine[s][metric] for s in seeds]
        seconds = statistics.mean(mine[s]["seconds"] for s in seeds)
        lines.append(f"{name:<10}" + "".join(f"{fmt.format(v):>11}" for v in values)
                     + f"{fmt.format(statistics.mean(values)):>11}{seconds:>9.0f}")
    return lines


def verdict(results: list[dict], table: str, seeds: list[int]) -> str:
    """Whether ``folds`` and ``ensemble`` beat both peers on the mean of the table's metric, and
    which sweep variant is worse than ``default`` at some seed."""
    metric = TABLES[table][1]
    fmt = FORMATS[metric]
    value = {(r["name"], r["seed"]): r[metric] for r in results if r["table"] == table}
    names = list(dict.fromkeys(name for name, _ in value))
    mean = {name: statistics.mean(value[name, s] for s in seeds) for name in names}
    peers = ", ".join(f"{p} {fmt.format(mean[p])}" for p in PEERS)
    parts = []
    for name in ("folds", "ensemble"):
        if name not in mean:
            parts.append(f"{name} not run")
        else:
            beats = all(mean[name] < mean[p] for p in PEERS)
            parts.append(f"{name} beats both peers: {'yes' if beats else 'no'} ({fmt.format(mean[name])} vs {peers})")
    if "default" in mean:
        for name in (n for n in names if n not in PEERS and n != "default"):
            worse = [f"seed {s} {fmt.format(value[name, s])} > {fmt.format(value['default', s])}"
                     for s in seeds if value[name, s] > value["default", s]]
            parts.append(f"{name} worse than default: {'; '.join(worse) if worse else 'at no seed'}")
    return f"{table} ({metric}, mean over seeds): " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2, help="trials at once in a sweep; the peers' search jobs")
    parser.add_argument("--candidates", type=int, default=40, help="the MLP peer's search: candidates (x 5 folds)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every measured number to OUT")
    args = parser.parse_args(argv)
    variants = [v for v in VARIANTS if v in args.variants]

    results = []
    for table in args.data:
        results += measure(table, args.seeds, variants, args.trials, args.jobs, args.candidates)
        print(f"\n{args.trials}-trial sweeps, n_jobs={args.jobs}; mlp-cv: {args.candidates} candidates x 5 folds")
        for metric in METRICS[TABLES[table][0]]:
            print("\n".join(table_lines(results, table, metric, args.seeds)))
        print(verdict(results, table, args.seeds), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"trials": args.trials, "jobs": args.jobs, "candidates": args.candidates,
                                         "seeds": args.seeds,
                                         "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
