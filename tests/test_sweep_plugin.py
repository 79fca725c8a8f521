"""The Optuna sweeper plugin alone, driving a tiny Hydra app (a quadratic "training" loop).

Real subprocesses, real SQLite files for Optuna and MLflow in a tmp dir, read back with
``optuna.load_study`` and ``MlflowClient``. The toy app keeps these tests fast and independent
of the network; tests/test_sweep_cli.py runs the same behaviours through ``python -m sweeper``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeper.sweep import trial_link
from sweeper.sweep.settings import Pruner

from . import zygote
from .stores import load_study, study_names
from .workers import assert_no_process_left
from .zygote import command_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

TOY_APP = '''
import os
import time

import hydra
from mlflow import MlflowClient

from sweeper.sweep import trial_link
from sweeper.tracking import experiment_name, get_or_create_experiment, tracking_uri


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    link = trial_link.current()
    if cfg.get("pids") and link is not None:  # which process runs which trial
        with open(cfg.pids, "a") as pids:
            pids.write(f"{link.trial_number} {os.getpid()}\\n")
    client = MlflowClient(tracking_uri(cfg.mlflow.tracking_uri))
    experiment_id = get_or_create_experiment(client, experiment_name(cfg))
    tags = {}
    if link is not None:
        tags = {"sweeper.trial": str(link.trial_number), "mlflow.parentRunId": link.parent_run_id}
    run_id = client.create_run(experiment_id, tags=tags).info.run_id
    client.log_param(run_id, "x", cfg.x)
    client.log_param(run_id, "lr", cfg.lr)
    client.log_param(run_id, "shape", cfg.shape.name)
    if "m" in cfg.shape:
        client.log_param(run_id, "shape.m", cfg.shape.m)
    if cfg.fail:
        client.set_tag(run_id, "sweeper.state", "FAIL")
        client.set_terminated(run_id, "FAILED")
        raise RuntimeError("asked to fail")
    state, value = "COMPLETE", None
    epochs = cfg.epochs * (20 if link is not None and link.trial_number == cfg.long_trial else 1)
    try:
        for epoch in range(1, epochs + 1):
            time.sleep(cfg.sleep)
            value = (cfg.x - 1) ** 2 + cfg.shape.k + 1.0 / (epoch * cfg.lr)
            client.log_metric(run_id, "val_loss", value, step=epoch)
            if link is not None and link.report(epoch, value):
                state = "PRUNED"
                break
            while cfg.stall is not None and link is not None and link.trial_number >= cfg.stall:
                time.sleep(0.05)  # a trial that runs until it is interrupted
    except KeyboardInterrupt:  # Ctrl-C, as the project's app does
        client.set_terminated(run_id, "KILLED")
        raise
    client.set_tag(run_id, "sweeper.state", state)
    client.set_terminated(run_id, "FINISHED")
    return {"state": state, "objective": cfg.objective, "run_id": run_id, "reason": None,
            "metrics": {"val_loss": value, "gap": abs(cfg.x)}}


if __name__ == "__main__":
    main()
'''

TOY_CONFIG = '''
defaults:
  - shape: a
  - _self_
  - override hydra/sweeper: optuna
  - override hydra/launcher: local
x: 0.0
lr: 1.0
epochs: 6
sleep: 0.0
fail: false
stall: null
long_trial: null
objective: val_loss
mlflow:
  tracking_uri: sqlite:///{tmp}/mlflow.db
  experiment: toy
data:
  name: toy
hydra:
  sweeper:
    storage: sqlite:///{tmp}/optuna.db
    study_name: toy
    validator: null
    preflight: null
    n_trials: 5
    params:
      x: interval(-3, 3)
      lr: tag(log, interval(0.01, 1))
      shape: choice(a, b)
      shape.m: interval(0, 1)
  sweep:
    dir: {tmp}/multirun/${{now:%H-%M-%S-%f}}
'''


@pytest.fixture
def toy(tmp_path: Path, empty_mlflow_db: Path, empty_optuna_db: Path) -> Path:
    """A Hydra app in ``tmp_path`` using the project's sweeper config, with its own stores (empty
    SQLite files with their schemas, copied: no migrations in every test)."""
    shutil.copyfile(empty_mlflow_db, tmp_path / "mlflow.db")
    shutil.copyfile(empty_optuna_db, tmp_path / "optuna.db")
    conf = tmp_path / "conf"
    (conf / "hydra" / "sweeper").mkdir(parents=True)
    (conf / "shape").mkdir()
    (conf / "hydra" / "sweeper" / "optuna.yaml").write_text(
        (REPO / "conf" / "hydra" / "sweeper" / "optuna.yaml").read_text()
    )
    (conf / "shape" / "a.yaml").write_text("name: a\nk: 1.0\n")
    (conf / "shape" / "b.yaml").write_text("name: b\nk: 2.0\nm: 0.5\n")
    (conf / "config.yaml").write_text(TOY_CONFIG.format(tmp=tmp_path))
    (tmp_path / "toy_app.py").write_text(TOY_APP)
    return tmp_path


def sweep_command(app: Path, *overrides: str) -> list[str]:
    """``python``'s arguments for a toy sweep: ``[toy_app.py, -m, *overrides]``."""
    return [str(app / "toy_app.py"), "-m", *overrides]


class Started:
    """A toy sweep running in the background (``Zygote.start``), its stdout and stderr in ``log``."""

    def __init__(self, app: Path, *overrides: str, log: str = "sweep.log", new_session: bool = False) -> None:
        self.log = app / log
        self.process = zygote.shared().start(sweep_command(app, *overrides), command_env(), app, self.log,
                                             new_session=new_session)
        self.pid = self.process.pid

    def communicate(self, timeout: float) -> str:
        """Wait for the sweep's end; its output."""
        self.process.wait(timeout=timeout)
        return self.log.read_text()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


def run_sweep(app: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = zygote.shared().run(sweep_command(app, *overrides), command_env(), app, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"sweep failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def load(app: Path, name: str = "toy") -> optuna.Study:
    return load_study(name, f"sqlite:///{app}/optuna.db")


def mlflow_runs(app: Path) -> tuple[MlflowClient, list, list]:
    """(client, parent runs, child runs) of the toy experiment."""
    client = MlflowClient(f"sqlite:///{app}/mlflow.db")
    experiment = client.get_experiment_by_name("toy")
    if experiment is None:
        return client, [], []
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "sweeper.study" in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_a_groups_own_key_is_suggested_only_when_the_chosen_option_has_it(toy: Path) -> None:
    run_sweep(toy, "hydra.sweeper.n_trials=6", "hydra.sweeper.sampler=random")
    trials = load(toy).trials
    assert {t.params["shape"] for t in trials} == {"a", "b"}
    for t in trials:
        assert ("shape.m" in t.params) == (t.params["shape"] == "b")


def test_a_group_fixed_on_the_command_line_keeps_only_its_own_keys_in_the_search(toy: Path) -> None:
    """``shape=a`` over a space sweeping ``shape`` and ``shape.m``: a has no m, so m is left out."""
    out = run_sweep(toy, "shape=a", "hydra.sweeper.n_trials=3")
    assert "shape.m is not searched: shape=a has no such key" in out.stdout + out.stderr
    assert [set(t.params) for t in load(toy).trials] == [{"x", "lr"}] * 3
    run_sweep(toy, "shape=b", "hydra.sweeper.n_trials=3", "hydra.sweeper.study_name=b")
    assert [set(t.params) for t in load(toy, "b").trials] == [{"x", "lr", "shape.m"}] * 3
    # A key no option of the group has is still a mistake, fixed group or not.
    proc = run_sweep(toy, "shape=a", "shape.q=interval(0,1)", "hydra.sweeper.study_name=q", check=False)
    assert proc.returncode != 0 and "unknown key 'shape.q'" in proc.stderr.strip().splitlines()[0]


def test_a_new_study_of_an_old_name_gets_a_parent_run_of_its_own(toy: Path) -> None:
    """The Optuna storage deleted, the MLflow store kept: trials 0.. must not join the old parent."""
    run_sweep(toy, "hydra.sweeper.n_trials=2")
    (toy / "optuna.db").unlink()
    run_sweep(toy, "hydra.sweeper.n_trials=2")
    _, parents, children = mlflow_runs(toy)
    assert len(parents) == 2
    for parent in parents:
        mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == parent.info.run_id]
        assert sorted(c.data.tags["sweeper.trial"] for c in mine) == ["0", "1"]
    study = load(toy)
    recorded = study._storage.get_study_system_attrs(study._study_id)["sweeper:parent_run_id"]
    assert recorded == max(parents, key=lambda p: p.info.start_time).info.run_id


def test_a_job_that_raises_is_a_fail_trial_and_the_sweep_goes_on(toy: Path) -> None:
    out = run_sweep(toy, "hydra.sweeper.n_trials=4", "fail=true,false", "hydra.sweeper.sampler=random")
    trials = load(toy).trials
    assert len(trials) == 4
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["fail"] is True for t in failed)
    assert all(t.user_attrs["reason"] == "RuntimeError: asked to fail" for t in failed)
    assert all(t.state == TrialState.COMPLETE for t in trials if t.params["fail"] is False)
    assert "FAIL  RuntimeError: asked to fail" in out.stdout + out.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("shape=choice(a,nosuchshape)", "shape=nosuchshape"),
        ("shape.q=interval(0,1)", "no option of shape has the key 'shape.q'"),
    ],
)
def test_a_bad_group_option_or_group_key_fails_before_any_trial(toy: Path, override: str, message: str) -> None:
    proc = run_sweep(toy, override, check=False)
    assert proc.returncode != 0
    first = proc.stderr.strip().splitlines()[0]
    assert message in first
    assert "Traceback" not in proc.stderr
    assert study_names(f"sqlite:///{toy}/optuna.db") == []
    assert mlflow_runs(toy)[1:] == ([], [])


def test_ctrl_c_fails_the_running_trial_and_keeps_the_finished_ones(toy: Path) -> None:
    """Trials 0 and 1 finish; trial 2 runs (it stalls after its first epoch) until Ctrl-C, which
    makes it FAIL "interrupted (Ctrl-C)". The same command resumes it with its parameters."""
    args = ("hydra.sweeper.n_trials=6", "epochs=3", "hydra.sweeper.pruner=none")
    proc = Started(toy, *args, "stall=2")
    _wait_for(toy, lambda trials: any(t.number == 2 and t.state == TrialState.RUNNING and t.intermediate_values
                                      for t in trials))
    proc.process.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    trials = load(toy).trials
    # Trial 3 is trial 2's retry, queued (WAITING) with its parameters for the next run.
    assert [(t.number, t.state) for t in trials] == [
        (0, TrialState.COMPLETE), (1, TrialState.COMPLETE), (2, TrialState.FAIL), (3, TrialState.WAITING)], output
    interrupted = trials[2]
    assert interrupted.user_attrs["reason"] == "interrupted (Ctrl-C)"
    assert trials[3].system_attrs["failed_trial"] == 2
    assert "interrupted: the running trial is FAIL, finished trials are kept" in output
    _, _, children = mlflow_runs(toy)
    assert sorted(c.info.status for c in children) == ["FINISHED", "FINISHED", "KILLED"]

    # A Ctrl-C'd trial is retried like a killed one: the same command resumes with its
    # parameters, and the study ends with n_trials counted (the interrupted one through its retry).
    run_sweep(toy, *args)
    resumed = load(toy).trials
    [retry] = [t for t in resumed if "failed_trial" in t.system_attrs]
    assert retry.number == 3 and retry.state == TrialState.COMPLETE
    assert retry.params == interrupted.params
    assert sum(t.state in FINISHED for t in resumed) == 6 + 1


#: Six random trials, two at a time in joblib worker processes.
SIX_TRIALS_TWO_AT_A_TIME = ("hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=6", "hydra.sweeper.sampler=random")

#: Two trials at a time in worker processes: the sweeper's own (the default launcher) or joblib's.
LAUNCHERS = pytest.mark.parametrize("launcher", [(), ("hydra/launcher=joblib",)], ids=["default", "joblib"])


@LAUNCHERS
def test_pruning_works_from_worker_processes(toy: Path, launcher: tuple[str, ...]) -> None:
    proc = run_sweep(
        toy,
        *launcher,
        *SIX_TRIALS_TWO_AT_A_TIME,
        "+hydra.sweeper.pruner_kwargs.n_startup_trials=2",
        "lr=tag(log,interval(0.001,1))",
        "epochs=8",
    )
    trials = load(toy).trials
    assert len(trials) == 6
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [t.state for t in trials]
    # Pruned in the workers: training stopped there (a trial pruned at its last epoch, 8, is
    # pruned too, but shows no stop).
    assert all(max(t.intermediate_values) <= 8 for t in pruned)
    assert any(max(t.intermediate_values) < 8 for t in pruned), [sorted(t.intermediate_values) for t in pruned]
    client, [parent], children = mlflow_runs(toy)
    assert len(children) == 6
    # The parent's plots, drawn at the sweep's end by an idle worker under the default launcher
    # (here, under joblib's): the importances are those of the stored study.
    import json

    from sweeper.tracking import importances

    assert "plots are drawn in the sweep's process" not in proc.stdout + proc.stderr
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"optimization_history.png", "param_importances.json", "param_importances.png"} <= artifacts
    logged = json.loads(Path(client.download_artifacts(parent.info.run_id, "param_importances.json", str(toy)))
                        .read_text())
    assert logged == json.loads(json.dumps(importances.of_study(load(toy), ["val_loss"])))


@LAUNCHERS
def test_with_two_jobs_a_trial_starts_as_soon_as_one_ends_while_a_longer_one_still_runs(
        toy: Path, launcher: tuple[str, ...]) -> None:
    """No batch barrier: a batch of two would start its third trial only after both ended. Trial 0
    trains 20 times longer (40 epochs of 0.1 s) than the others, which the second lane runs
    meanwhile."""
    run_sweep(toy, *launcher, *SIX_TRIALS_TWO_AT_A_TIME, "hydra.sweeper.pruner=none", "epochs=2", "sleep=0.1",
              "long_trial=0")
    trials = load(toy).trials
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    overlaps = [(a.number, b.number, c.number) for a in trials for b in trials for c in trials
                if len({a.number, b.number, c.number}) == 3
                and a.datetime_start < b.datetime_complete <= c.datetime_start < a.datetime_complete]
    assert any(a == 0 for a, _, _ in overlaps), [(t.number, t.datetime_start, t.datetime_complete) for t in trials]
    _, _, children = mlflow_runs(toy)
    assert len(children) == 6


def _wait_for(toy: Path, ready, timeout: float = 120) -> list:
    """The study's trials once ``ready(trials)`` holds (polling), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            trials = load(toy).trials
        except KeyError:
            continue
        if ready(trials):
            return trials
    raise AssertionError("the sweep did not get there in time")


def test_ctrl_c_with_two_worker_processes_ends_both_running_trials_and_their_mlflow_runs(toy: Path) -> None:
    """Ctrl-C reaches every process of a terminal: the workers leave it to the sweeper, which
    stops their jobs, so each running trial is FAIL "interrupted (Ctrl-C)" with its MLflow run
    KILLED, no worker is left, and the same command resumes with their retries."""
    args = (*SIX_TRIALS_TWO_AT_A_TIME, "sleep=0.3", "epochs=20", "hydra.sweeper.pruner=none")
    proc = Started(toy, *args, new_session=True)
    # Both jobs inside their epochs.
    _wait_for(toy, lambda trials: sum(t.state == TrialState.RUNNING and len(t.intermediate_values) >= 2
                                      for t in trials) == 2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    output = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    trials = load(toy).trials
    assert TrialState.RUNNING not in {t.state for t in trials}
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 2 and {t.user_attrs["reason"] for t in failed} == {"interrupted (Ctrl-C)"}
    _, _, children = mlflow_runs(toy)
    assert sorted(c.info.status for c in children) == ["KILLED", "KILLED"]
    assert_no_process_left(proc.pid)  # the workers and the fork server end with the sweeper

    run_sweep(toy, *args[:-3], "epochs=2")
    resumed = load(toy).trials
    retried = sorted(t.system_attrs["failed_trial"] for t in resumed if "failed_trial" in t.system_attrs)
    assert retried == sorted(t.number for t in failed)
    assert sum(t.state in FINISHED for t in resumed) == 6 + 2


def test_a_worker_process_killed_mid_trial_is_replaced_and_its_trial_retried_once(toy: Path) -> None:
    pids = toy / "pids.txt"
    # Trial 1 trains 20 times longer (80 epochs of 0.2 s) than the others: it is killed mid-trial.
    args = (*SIX_TRIALS_TWO_AT_A_TIME, "sleep=0.2", "epochs=4", "long_trial=1", "hydra.sweeper.pruner=none",
            f"+pids={pids}")
    proc = Started(toy, *args)
    trials = _wait_for(toy, lambda trials: any(t.number == 1 and t.state == TrialState.RUNNING for t in trials)
                       and pids.exists() and any(line.startswith("1 ") for line in pids.read_text().splitlines()))
    pid = int(next(line.split()[1] for line in pids.read_text().splitlines() if line.startswith("1 ")))
    os.kill(pid, signal.SIGKILL)
    output = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    trials = load(toy).trials
    killed = next(t for t in trials if t.number == 1)
    assert killed.state == TrialState.FAIL and "worker process" in killed.user_attrs["reason"], killed.user_attrs
    [retry] = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert retry.params == killed.params and retry.state == TrialState.COMPLETE
    assert len(trials) == 6 + 1 and all(t.state in FINISHED for t in trials)
    assert "trial 1 FAIL" in output and "retried once with the same parameters" in output
    # Later trials ran in a new worker process.
    assert len({line.split()[1] for line in pids.read_text().splitlines()}) == 3


def test_current_is_none_outside_a_multirun_even_with_stale_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    for key in (trial_link.STORAGE, trial_link.STUDY, trial_link.TRIAL_ID, trial_link.TRIAL_NUMBER):
        monkeypatch.setenv(key, "1")
    # Hydra's config is process-wide: leave none behind, or later in-process runs are "trials".
    monkeypatch.setattr(HydraConfig.instance(), "cfg", None)
    assert trial_link.current() is None
    (tmp_path / "config.yaml").write_text("x: 1\n")
    identity = trial_link.overrides_for("sqlite:///x.db", "s", 3, 2, None)
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        cfg = compose("config", return_hydra_config=True, overrides=identity)
        HydraConfig.instance().set_config(cfg)
        assert trial_link.current() is None  # RUN mode: a plain run is never a trial
        cfg = compose("config", return_hydra_config=True, overrides=identity + ["hydra.mode=MULTIRUN"])
        HydraConfig.instance().set_config(cfg)
        link = trial_link.current()
    assert (link.storage_url, link.study_name, link.trial_id, link.trial_number, link.parent_run_id) == (
        "sqlite:///x.db", "s", 3, 2, None)


@pytest.mark.parametrize("url", ["sqlite:////tmp/a b/x.db", "postgresql://u:p'a\\ss,w=rd@h:5432/db?x=1", "a\\"])
def test_identity_overrides_survive_hydras_grammar(url: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    pruner = Pruner("median", {"n_warmup_steps": 5}).text()
    parsed = OverridesParser.create().parse_overrides(trial_link.overrides_for(url, "my study", 12, 11, "abc", pruner))
    assert [o.value() for o in parsed] == [url, "my study", "12", "11", "abc", pruner]
    assert Pruner.from_text(parsed[-1].value()) == Pruner("median", {"n_warmup_steps": 5})


def test_two_workers_on_one_storage_share_the_budget_the_parent_run_and_no_suggestion(toy: Path) -> None:
    # Both stores exist before the workers start (the toy fixture's copies: creating a fresh MLflow
    # SQLite schema from two processes at once is MLflow's own race, not the sweeper's).
    workers = [Started(toy, "hydra.sweeper.n_trials=6", "sleep=0.05", log=f"worker{i}.log") for i in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = load(toy).trials
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 6
    assert len({t.number for t in finished}) == 6
    # The joining worker's sampler is seeded apart from the creator's: no replayed suggestions.
    assert len({tuple(sorted(t.params.items())) for t in finished}) == 6
    _, parents, children = mlflow_runs(toy)
    assert len(parents) == 1
    assert len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}


def test_a_study_resumed_with_another_sampler_says_so(toy: Path) -> None:
    run_sweep(toy, "hydra.sweeper.n_trials=2")
    out = run_sweep(toy, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler=random")
    assert "study 'toy' resumed with hydra.sweeper.sampler=random (it ran with tpe before)" in out.stdout + out.stderr
    assert len(load(toy).trials) == 3
