"""`python -m sweeper -m` end to end: the Optuna sweep over the real network on car_prices.

Every test runs the real CLI in a subprocess against throw-away SQLite stores (tests/conftest.py)
and reads the result back with Optuna's ``load_study`` and ``MlflowClient``. Spaces are small and
epochs few so the whole file stays around three minutes on two cores.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from optuna.trial import TrialState

from sweeper.tracking import plots

from tests import zygote
from tests.curves import epoch_values
from tests.paths import DATA, ROOT
from .stores import load_study, study_names
from .workers import assert_no_process_left
from .zygote import command_env

pytestmark = pytest.mark.slow

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
STUDY = "s"


def sweep_args(optuna_url: str, *overrides: str) -> list[str]:
    return ["-m", f"hydra.sweeper.storage={optuna_url}", f"hydra.sweeper.study_name={STUDY}", *overrides]


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return proc


def parent_and_children(client, parent_name: str = STUDY):
    experiment = client.get_experiment_by_name("car_prices")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("sweeper.study") == parent_name]
    assert len(parents) == 1, [r.data.tags for r in runs]
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def same_value(optuna_value, logged: str) -> bool:
    if isinstance(optuna_value, float):
        return float(logged) == pytest.approx(optuna_value)
    return str(optuna_value).replace(" ", "").lower() == logged.replace(" ", "").lower()


def test_small_sweep_gives_n_trials_and_n_child_runs_matching_optuna(run_cli, optuna_url, mlflow_client, tmp_path):
    proc = ok(run_cli(*sweep_args(optuna_url, "search=small", "hydra.sweeper.n_trials=8", "train.epochs=10")))
    study = load_study(STUDY, optuna_url)
    assert len(study.trials) == 8
    assert all(t.state in FINISHED for t in study.trials)
    # Trial 0 is the base config where the space allows it (conf/config.yaml: relu, lr 0.01,
    # momentum 0.9, constant schedule); its [64,32] is not among search=small's widths: sampled.
    first = study.trials[0].params
    assert {k: first[k] for k in ("model.activation", "optimizer.lr", "optimizer.momentum", "schedule")} == {
        "model.activation": "relu", "optimizer.lr": 0.01, "optimizer.momentum": 0.9, "schedule": "constant"}
    assert first["model.hidden"] in ("[16]", "[32,16]")

    parent, children = parent_and_children(mlflow_client)
    assert parent.info.status == "FINISHED"
    assert {parent.data.tags["sweeper.sampler"], parent.data.tags["sweeper.pruner"]} == {"tpe", "median"}
    assert len(children) == 8
    assert {r.data.tags.get("mlflow.source.name") for r in (parent, *children)} == {"python -m sweeper"}
    by_number = {int(c.data.tags["sweeper.trial"]): c for c in children}
    assert sorted(by_number) == [t.number for t in study.trials]
    for trial in study.trials:
        child = by_number[trial.number]
        assert child.info.run_id == trial.user_attrs["run_id"]
        assert child.data.tags["sweeper.state"] == trial.state.name
        ended = {"PRUNED": f" (pruned @{child.data.metrics.get('epochs_run', 0):.0f})", "FAIL": " (failed)"}
        assert child.info.run_name == f"trial-{trial.number}" + ended.get(trial.state.name, "")
        for key, value in trial.params.items():
            logged = child.data.params.get(key, child.data.params.get(f"{key}.name"))
            assert logged is not None and same_value(value, logged), (key, value, logged)

    complete = [c for c in children if c.data.tags["sweeper.state"] == "COMPLETE"]
    assert study.best_value == pytest.approx(min(c.data.metrics["val_rmse"] for c in complete))
    # The parent's metrics are the sweep's own: never a trial's metric name.
    assert parent.data.metrics["best_val_rmse"] == pytest.approx(study.best_value)
    assert not set(parent.data.metrics) & {name for c in children for name in c.data.metrics}
    states = [t.state for t in study.trials]
    assert [parent.data.metrics[f"n_{n}"] for n in ("complete", "pruned", "failed")] == [
        states.count(TrialState.COMPLETE), states.count(TrialState.PRUNED), states.count(TrialState.FAIL)]
    # The experiment opens on its runs (model training) and says what it is about; every trial
    # has the CSV as its dataset input and a one-line description.
    experiment = mlflow_client.get_experiment_by_name("car_prices")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"].startswith("car_prices.csv: Price predicted from 17 columns")
    digest = hashlib.sha256((DATA / "car_prices.csv").read_bytes()).hexdigest()[:16]
    for child in children:
        [given] = child.inputs.dataset_inputs
        assert (given.dataset.name, given.dataset.digest) == ("car_prices.csv", digest)
        assert [tag.value for tag in given.tags] == ["training"]
        assert child.data.tags["mlflow.note.content"].endswith("epochs")
    # Parent and children share the param keys: the whole config, flattened (the parent's are
    # the best trial's config; a key only some schedules have is only in their runs).
    assert set(parent.data.params) >= set.intersection(*(set(c.data.params) for c in children))
    best_child = next(c for c in children if c.info.run_id == study.best_trial.user_attrs["run_id"])
    assert {k: v for k, v in parent.data.params.items() if k != "data.path"} == {
        k: v for k, v in best_child.data.params.items() if k != "data.path"}
    artifacts = {a.path for a in mlflow_client.list_artifacts(parent.info.run_id)}
    assert {"best_config.yaml", "trials.csv", "optimization_history.png", "param_importances.png"} <= artifacts
    # Each trial's loss_curves.png, drawn by the sweep's drawing process while the next trial
    # trained, is its own run's: the pixels of its logged curves drawn here.
    for child in children:
        history = {name: list(epoch_values(mlflow_client, child.info.run_id, name).values())
                   for name in ("train_loss", "val_loss", "test_loss", "val_loss_std")}
        logged = mlflow_client.download_artifacts(child.info.run_id, "loss_curves.png", str(tmp_path))
        plots.plot_loss_curves(history, int(child.data.metrics["best_epoch"]), tmp_path / "expected.png")
        assert np.array_equal(matplotlib.image.imread(logged), matplotlib.image.imread(tmp_path / "expected.png"))
    output = proc.stdout + proc.stderr
    assert f"best trial #{study.best_trial.number}" in output
    # Beside the objective, the best trial's held-out score, as its run logged it.
    assert f"val_rmse={study.best_value:.6g}, test_rmse={best_child.data.metrics['test_rmse']:.6g}  (MLflow run" in output
    assert study.best_trial.user_attrs["run_id"] in output
    assert "mlflow ui --backend-store-uri sqlite:///" in output
    # The console: one line per trial and a short summary, nothing internal, an ETA.
    lines = [line for line in output.splitlines() if line.strip()]
    progress = [line for line in lines if re.search(r"\btrial \d+ (COMPLETE|PRUNED|FAIL)  ", line)]
    assert len(progress) == 8 and all(" done" in line for line in progress)
    assert "ETA " in progress[0]
    summary = lines[next(i for i, line in enumerate(lines) if f"sweep '{STUDY}':" in line):]
    assert len(summary) <= 16, summary  # 15, and the line weighing the winner's margin against the noise
    assert len(lines) <= 3 + len(progress) + len(summary), lines  # + the data, base-config and study lines
    for internal in ("SWEEPER_", "env_set", "View run", "[I ", "Launching"):
        assert internal not in output, internal
    assert f"python -m sweeper.report --sweep {parent.info.run_id}" in output


def test_best_config_yaml_of_the_parent_reruns_the_best_trial(run_cli, optuna_url, mlflow_client, tmp_path):
    ok(run_cli(*sweep_args(optuna_url, "search=small", "hydra.sweeper.n_trials=3", "train.epochs=8")))
    best = load_study(STUDY, optuna_url).best_trial
    parent, _ = parent_and_children(mlflow_client)
    path = Path(mlflow_client.download_artifacts(parent.info.run_id, "best_config.yaml", str(tmp_path)))
    ok(run_cli("--config-path", str(path.parent), "--config-name", "best_config"))
    experiment = mlflow_client.get_experiment_by_name("car_prices")
    plain = [r for r in mlflow_client.search_runs([experiment.experiment_id])
             if "mlflow.parentRunId" not in r.data.tags and "sweeper.study" not in r.data.tags]
    assert len(plain) == 1
    assert plain[0].data.metrics["val_rmse"] == pytest.approx(best.value, rel=1e-9)


def test_median_pruning_trains_fewer_epochs_than_no_pruning_on_the_same_suggestions(
    run_cli, optuna_url, mlflow_client
):
    # lr over five decades: the slow half is visibly worse after a few epochs.
    space = ("search=small", "optimizer.lr=tag(log,interval(1e-5,1))", "optimizer.momentum=0.0",
             "hydra.sweeper.n_trials=8", "train.epochs=15")
    pruners = {"none": ["hydra.sweeper.pruner=none"],
               "median": ["hydra.sweeper.pruner=median", "+hydra.sweeper.pruner_kwargs.n_startup_trials=3"]}
    studies = {}
    for pruner, settings in pruners.items():
        name = f"pruner-{pruner}"
        ok(run_cli(*sweep_args(optuna_url, *space, *settings, f"hydra.sweeper.study_name={name}")))
        studies[pruner] = load_study(name, optuna_url)

    # Same seed and sampler: the same suggestions (reproducible sweeps), so the epochs compare fairly.
    assert [t.params for t in studies["none"].trials] == [t.params for t in studies["median"].trials]
    epochs = {p: sum(len(t.intermediate_values) for t in s.trials) for p, s in studies.items()}
    pruned = [t for t in studies["median"].trials if t.state == TrialState.PRUNED]
    assert pruned
    assert not [t for t in studies["none"].trials if t.state == TrialState.PRUNED]
    assert epochs["median"] < epochs["none"]

    _, children = parent_and_children(mlflow_client, "pruner-median")
    for trial in pruned:
        run = next(c for c in children if c.info.run_id == trial.user_attrs["run_id"])
        assert (run.info.status, run.data.tags["sweeper.state"]) == ("FINISHED", "PRUNED")
        curve = epoch_values(mlflow_client, run.info.run_id, "val_loss")
        assert len(curve) == len(trial.intermediate_values) < 15


def test_a_diverging_or_collapsing_lr_gives_fail_trials_and_the_sweep_completes(run_cli, optuna_url, mlflow_client):
    """lr 1e6 diverges; lr 0.3 (momentum 0.9, ReLU [32,16]) kills the second layer in the first
    epoch, before the pruner hears of it: both FAIL with their reason, in Optuna and MLflow."""
    ok(run_cli(*sweep_args(optuna_url, "search=small", "optimizer.lr=choice(0.01,0.3,1e6)", "model.activation=relu",
                           "split.folds=1",  # one network: its collapse is the reason, not another fold's
                           "model.hidden=[32,16]", "optimizer.momentum=0.9", "schedule=constant",
                           "hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=3", "train.epochs=5")))
    trials = load_study(STUDY, optuna_url).trials
    assert sorted((t.params["optimizer.lr"], t.state) for t in trials) == [
        (0.01, TrialState.COMPLETE), (0.3, TrialState.FAIL), (1e6, TrialState.FAIL)]
    failed = {t.params["optimizer.lr"]: t for t in trials if t.state == TrialState.FAIL}
    assert failed[0.3].user_attrs["reason"] == ("the network's output collapsed to a constant at epoch 1 "
                                                "(every hidden unit of layer 2 dead; lr=0.3)")
    assert failed[0.3].intermediate_values == {}
    assert re.match(r"train_loss (became nan|.* exceeded divergence_factor)", failed[1e6].user_attrs["reason"])
    _, children = parent_and_children(mlflow_client)
    runs = {c.info.run_id: c for c in children}
    for trial in failed.values():
        run = runs[trial.user_attrs["run_id"]]
        assert (run.info.status, run.data.tags["sweeper.fail_reason"]) == ("FAILED", trial.user_attrs["reason"])


def training(client, trial_number: int) -> bool:
    """Whether the MLflow child run of ``trial_number`` exists and is RUNNING."""
    experiment = client.get_experiment_by_name("car_prices")
    if experiment is None:
        return False
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`sweeper.trial` = '{trial_number}' and attributes.status = 'RUNNING'",
    )
    return bool(runs)


def test_sigkill_mid_sweep_then_the_same_command_resumes_to_exactly_n_trials(
    optuna_url, mlflow_uri, mlflow_client, workdir
):
    # 400 epochs (about a second a trial): the kill must land while the trial seen RUNNING still
    # trains (at 40 epochs it sometimes finished, and was told COMPLETE, between the look and the kill).
    # grace_period=5: a kill that lands between asking for a trial and recording the sweeper on
    # it leaves that trial unowned; the rerun fails and retries it 5 s after it started, not 60.
    # 400 epochs of one network (split.folds=1).
    args = sweep_args(optuna_url, "search=small", "split.folds=1", "hydra.sweeper.n_trials=3", "train.epochs=400",
                      "train.early_stopping.patience=null", "hydra.sweeper.pruner=none",
                      "hydra.sweeper.grace_period=5")
    env = command_env({"MLFLOW_TRACKING_URI": mlflow_uri})
    command = ["-m", "sweeper", *args]
    proc = zygote.shared().start(command, env, workdir, workdir / "killed.log", new_session=True)
    deadline = time.monotonic() + 180
    killed: list[int] = []
    while time.monotonic() < deadline and not killed:
        time.sleep(0.2)
        try:
            trials = load_study(STUDY, optuna_url).trials
        except KeyError:
            continue
        running = [t.number for t in trials if t.state == TrialState.RUNNING]
        if sum(t.state in FINISHED for t in trials) >= 1 and running and training(mlflow_client, running[0]):
            os.kill(proc.pid, signal.SIGKILL)
            killed = running
    proc.wait(timeout=30)
    assert killed, "the sweep finished before it could be killed mid-trial"
    assert_no_process_left(proc.pid)  # its drawing process and the fork server end with it

    rerun = zygote.shared().run(command, env, workdir, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    trials = load_study(STUDY, optuna_url).trials
    # Counting rule: COMPLETE + PRUNED + FAIL count towards n_trials, except a trial whose
    # sweeper died: it stays FAIL, and its one retry, with the same parameters, counts instead.
    [lost] = [t for t in trials if t.number in killed]
    assert lost.state == TrialState.FAIL
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert retry.params == lost.params
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert all(t.state in FINISHED for t in trials)
    assert sorted(t.number for t in trials) == list(range(4))  # 3 counted + the killed one
    assert f"trial {lost.number} FAIL its sweeper process died | retried once with the same parameters" in rerun.stdout

    parent, children = parent_and_children(mlflow_client)
    assert parent.info.status == "FINISHED"
    assert not [c for c in children if c.info.status == "RUNNING"]
    assert len({c.data.tags["sweeper.trial"] for c in children}) == len(children) == 4
    dead = [c for c in children if int(c.data.tags["sweeper.trial"]) in killed]
    assert [(c.info.status, c.data.tags["sweeper.state"]) for c in dead] == [("FAILED", "FAIL")]


def test_a_pruned_trials_optuna_values_and_mlflow_curve_agree_epoch_by_epoch(run_cli, optuna_url, mlflow_client):
    """What the pruner saw is what MLflow shows: for every pruned trial, Optuna's intermediate
    values (val_rmse in the target's units) are at exactly the epochs of MLflow's val_loss curve
    (the scaled target's ½·MSE), and val_rmse = σ_y·√(2·val_loss) with one σ_y for all of them."""
    # One split: val_rmse = σ_y·√(2·val_loss) holds for one network, not for a mean over folds.
    ok(run_cli(*sweep_args(optuna_url, "search=small", "hydra.sweeper.n_trials=10", "train.epochs=30",
                           "split.folds=1")))
    pruned = load_study(STUDY, optuna_url).get_trials(states=(TrialState.PRUNED,))
    assert pruned, "no trial was pruned"
    scales = []
    for trial in pruned:
        curve = epoch_values(mlflow_client, trial.user_attrs["run_id"], "val_loss")
        assert sorted(trial.intermediate_values) == sorted(curve) == list(range(1, len(curve) + 1))
        scales += [value / (2 * curve[epoch]) ** 0.5 for epoch, value in trial.intermediate_values.items()]
    assert max(scales) == pytest.approx(min(scales), rel=1e-9)


def test_an_emptied_optuna_file_says_it_starts_over_beside_the_earlier_parent_run(run_cli, optuna_url, mlflow_client):
    args = sweep_args(optuna_url, "search=small", "hydra.sweeper.n_trials=1", "train.epochs=2")
    ok(run_cli(*args))
    earlier, _ = parent_and_children(mlflow_client)
    Path(optuna_url).write_bytes(b"")  # an emptied (0-byte) journal file
    again = ok(run_cli(*args, "hydra.verbose=true"))
    assert "Launching 1 jobs locally" in again.stdout + again.stderr  # Hydra's own lines, when asked for
    assert (f"study '{STUDY}' is new in this storage, but MLflow has the parent run {earlier.info.run_id} "
            "of an earlier study of that name: starting over with a new parent run") in again.stdout + again.stderr
    experiment = mlflow_client.get_experiment_by_name("car_prices")
    parents = [r for r in mlflow_client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2  # the earlier sweep's trials are not joined by the new ones


def test_multi_objective_nsga2_logs_the_pareto_front_to_the_parent(run_cli, optuna_url, mlflow_client):
    ok(run_cli(*sweep_args(optuna_url, "search=small", "hydra.sweeper.sampler=nsga2", "hydra.sweeper.n_trials=4",
                           "hydra.sweeper.directions=[val_rmse,generalization_gap]", "train.epochs=5")))
    study = load_study(STUDY, optuna_url)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    front = sorted(t.number for t in study.best_trials)
    assert front
    parent, _ = parent_and_children(mlflow_client)
    assert parent.data.tags["sweeper.pareto_trials"] == ",".join(map(str, front))
    folder = mlflow_client.download_artifacts(parent.info.run_id, "pareto_front.csv")
    import pandas as pd

    table = pd.read_csv(folder)
    assert sorted(table["number"]) == front
    assert {"val_rmse", "generalization_gap", "run_id"} <= set(table.columns)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.nosuchkey=choice(1,2)", "model.nosuchkey"),
        ("optimizer.lr=interval(0.1,0.01)", "low 0.1 > high 0.01"),
        ("model.activation=choice(relu,swish)", "model.activation"),
        ("optimizer.nesterov=choice(true,0)", "optimizer.nesterov=0: optimizer.nesterov: 0 is not a bool"),
        ("schedule.gama=interval(0.5,0.9)", "no option of schedule has the key 'schedule.gama'"),
        # A fixed value's own error is not blamed on the first swept value.
        ("objective=test_rmse", "error: objective: unknown value 'test_rmse'; allowed: auto, val_rmse,"),
        ("hydra.sweeper.timeout=-5", "error: hydra.sweeper.timeout=-5.0; must be > 0 seconds or null"),
        ("hydra.sweeper.heartbeat_interval=0", "error: hydra.sweeper.heartbeat_interval=0; must be >= 1 second"),
        ("hydra.sweeper.seed=-3", "error: hydra.sweeper.seed=-3; must be an integer in [0, 2**32 - 1]"),
        ("hydra.sweeper.ensemble=0", "error: hydra.sweeper.ensemble=0; must be >= 1 (1 = the best trial's model)"),
        ("split.folds=0", "error: split.folds: 0 is out of range; allowed: auto or an integer >= 1"),
    ],
)
def test_a_bad_search_space_fails_before_any_trial_with_one_line(run_cli, optuna_url, mlflow_uri, override, message):
    proc = run_cli(*sweep_args(optuna_url, "search=small", override))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert study_names(optuna_url) == []
    from mlflow import MlflowClient

    experiment = MlflowClient(mlflow_uri).get_experiment_by_name("car_prices")
    assert experiment is None or not MlflowClient(mlflow_uri).search_runs([experiment.experiment_id])


def test_the_summary_table_lists_the_best_trials_first_with_the_parameters_that_differ():
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import create_trial

    from sweeper.sweep.console import duration, eta, top_table

    dists = {"optimizer.lr": FloatDistribution(1e-4, 1.0), "model.activation": CategoricalDistribution(["relu", "tanh"]),
             "seed": CategoricalDistribution([1])}
    trials = [create_trial(value=v, params={"optimizer.lr": lr, "model.activation": a, "seed": 1}, distributions=dists)
              for v, lr, a in [(2.0, 0.01, "relu"), (1.0, 0.03, "relu"), (3.0, 0.5, "tanh")]]
    for number, trial in enumerate(trials):
        trial.number = number
    table = top_table(sorted(trials, key=lambda t: t.value), ["val_rmse"])
    assert [row.split() for row in table] == [["#", "val_rmse", "activation", "lr"], ["1", "1", "relu", "0.03"],
                                              ["0", "2", "relu", "0.01"], ["2", "3", "tanh", "0.5"]]
    assert (duration(7.4), duration(750), duration(3723)) == ("0:07", "12:30", "1:02:03")
    assert eta([1.0, 3.0, 2.0], remaining=5, n_jobs=2) == "ETA 0:06"  # median 2 s x 3 rounds
    assert eta([], remaining=5, n_jobs=1) == eta([1.0], remaining=0, n_jobs=1) == ""


def readme_sweeps() -> list[list[str]]:
    """The overrides of each command of the README's "Sweeps" block, in order (``make sweep`` is
    ``python -m sweeper -m``; the SLURM line, which needs a cluster, is left to tests/test_slurm.py)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("\n## Sweeps\n", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words or "…" in words:
            continue
        if words[:2] == ["make", "sweep"]:
            words = ["python", "-m", "sweeper", "-m"]
        assert words[:4] == ["python", "-m", "sweeper", "-m"], line
        commands.append(words[4:])
    return commands


def test_the_readme_sweeps_run_one_after_another_on_one_store(run_cli, optuna_url):
    """Each command of the README's Sweeps block, run in order on one Optuna and one MLflow store
    (a tenth of its trials, 2 epochs each), runs trials: a command over another space or
    objective gets a study of its own instead of failing each trial on Optuna's distribution
    check, and ``n_trials=50`` resumes the default study up to that total. A trial may still
    FAIL for the reason any sweep's may (a large learning rate diverges or collapses the network), never for
    another."""
    commands = readme_sweeps()
    assert len(commands) == 7
    for overrides in commands:
        basic = "hydra/sweeper=basic" in overrides
        budget = [o for o in overrides if o.startswith("hydra.sweeper.n_trials=")]
        scaled = [o for o in overrides if o not in budget] + ["train.epochs=2"]
        if not basic:
            trials = math.ceil(int(budget[0].split("=")[1]) / 10) if budget else 3
            scaled += [f"hydra.sweeper.storage={optuna_url}", f"hydra.sweeper.n_trials={trials}"]
        proc = ok(run_cli("-m", *scaled))
        ran = re.findall(r"trial \d+ (COMPLETE|PRUNED|FAIL)", proc.stderr + proc.stdout)
        # Trials ran (the n_jobs=2 line runs one, whose worker-seeded values may diverge: FAIL).
        assert basic or ran, (overrides, proc.stdout, proc.stderr)

    studies = {name: load_study(name, optuna_url).trials for name in study_names(optuna_url)}
    assert sorted(len(trials) for trials in studies.values()) == [3, 3, 3, 6]  # default: 3, then 5, then 6
    default = [name for name, trials in studies.items() if len(trials) == 6]
    assert re.fullmatch(r"car_prices-default-[0-9a-f]{6}", default[0])
    failed = [t.user_attrs.get("reason", "") for trials in studies.values() for t in trials if t.state == TrialState.FAIL]
    reasons = r"(fold \d: )?(train_loss (became nan|.* exceeded divergence_factor)|the network's output collapsed)"
    assert all(re.match(reasons, r)
               for r in failed), failed
