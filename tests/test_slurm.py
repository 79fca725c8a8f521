"""Trials as SLURM jobs: ``hydra/launcher=slurm`` against a real one-node SLURM (issue 18).

``tests/slurm_cluster.py`` starts ``munged``, ``slurmdbd`` (on MariaDB), ``slurmctld`` and
``slurmd``; ``tests/servers.py`` a real PostgreSQL for the study and a real MLflow server. Every
sweep is the real CLI, ``python -m sweeper -m hydra/launcher=slurm …``, whose batches submitit
submits with ``sbatch`` as job arrays; the tests read back what ``sacct``, the Optuna study and
MLflow each say happened.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests.servers import PG_PASSWORD, database, mlflow_server, postgres  # noqa: F401
from tests.slurm_cluster import SlurmCluster, slurm  # noqa: F401
from tests.workers import FINISHED, Worker, mlflow_sweep, sweep_args, unique_name, wait_all

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]

SWEEP_TIMEOUT = 240


def slurm_sweep_args(storage: str, study: str, tracking_uri: str, sweep_dir: Path, *extra: str) -> list[str]:
    """A sweep whose trials are SLURM jobs named after the study (so squeue shows whose they are)."""
    return sweep_args(storage, study, tracking_uri, study, sweep_dir, "hydra/launcher=slurm",
                      f"hydra.launcher.name={study}", *extra)


def slurm_jobs_of(sweep_dir: Path) -> dict[int, str]:
    """``{trial number: SLURM job id}`` from each job's own Hydra record (``.hydra/hydra.yaml``:
    Hydra's ``job.id`` is the SLURM job id under submitit; the trial is in its ``env_set``)."""
    jobs = {}
    for path in sweep_dir.glob("*/.hydra/hydra.yaml"):
        try:
            job = yaml.safe_load(path.read_text())["hydra"]["job"]
            jobs[int(job["env_set"]["SWEEPER_TRIAL_NUMBER"])] = str(job["id"])
        except (yaml.YAMLError, KeyError, TypeError):  # a job that is writing it right now
            continue
    return jobs


def submitted_arrays(sweep_dir: Path) -> set[str]:
    """The jobs submitit submitted for the sweep (its folders ``.submitit/<array>_<task>``, and
    ``.submitit/<job>`` for a batch of one): the ids sacct takes."""
    return {path.name.split("_")[0] for path in (sweep_dir / ".submitit").iterdir()
            if re.fullmatch(r"\d+(_\d+)?", path.name)}


def sweep_state(cluster: SlurmCluster, storage: str, study: str, tracking_uri: str, sweep_dir: Path,
                worker: Worker) -> SimpleNamespace:
    client = MlflowClient(tracking_uri=tracking_uri)
    parents, children = mlflow_sweep(client, study)
    return SimpleNamespace(
        worker=worker, sweep_dir=sweep_dir, client=client, parents=parents, children=children,
        trials=optuna.load_study(study_name=study, storage=storage).trials,
        sacct=cluster.sacct(*submitted_arrays(sweep_dir)), jobs=slurm_jobs_of(sweep_dir))


def assert_one_parent_one_child_per_trial(scenario) -> dict[int, object]:
    """One MLflow parent, one child run per trial under it; ``{trial number: child run}``."""
    assert len(scenario.parents) == 1, [p.data.tags for p in scenario.parents]
    parent = scenario.parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in scenario.children} == {parent.info.run_id}
    runs = {int(c.data.tags["sweeper.trial"]): c for c in scenario.children}
    assert len(runs) == len(scenario.children) == len(scenario.trials)
    assert sorted(runs) == sorted(t.number for t in scenario.trials)
    return runs


# -- 1 and 2. six trials, three at a time, the median pruner ------------------------------------

N_TRIALS, N_JOBS = 6, 3


@pytest.fixture(scope="module")
def six_trials(slurm, database, mlflow_server, tmp_path_factory):
    """``n_trials=6 n_jobs=3``: two job arrays of three. The median pruner (once 2 trials are
    complete, n_warmup_steps=1) and learning rates down to 1e-6: the second batch, which sees
    the first's three complete trials, has trials to prune."""
    study, base = unique_name("slurm"), tmp_path_factory.mktemp("six-trials")
    args = slurm_sweep_args(database, study, mlflow_server.url, base / "multirun",
                            f"hydra.sweeper.n_trials={N_TRIALS}", f"hydra.sweeper.n_jobs={N_JOBS}",
                            "hydra.sweeper.sampler=random", "hydra.sweeper.pruner=median",
                            "+hydra.sweeper.pruner_kwargs.n_startup_trials=2",
                            "+hydra.sweeper.pruner_kwargs.n_warmup_steps=1",
                            "optimizer.lr=tag(log,interval(1e-6,0.1))", "train.epochs=10")
    worker = Worker(args, base / "sweep.log", env={"SLURM_CONF": str(slurm.conf)})
    wait_all([worker], timeout=SWEEP_TIMEOUT)
    return sweep_state(slurm, database, study, mlflow_server.url, base / "multirun", worker)


def test_six_trials_run_as_six_completed_slurm_jobs_in_two_arrays(six_trials):
    assert len(submitted_arrays(six_trials.sweep_dir)) == N_TRIALS // N_JOBS
    assert sorted(six_trials.sacct.values()) == ["COMPLETED"] * N_TRIALS, six_trials.sacct
    # Each trial ran in a job of its own, and those are the jobs sacct accounts for.
    assert sorted(six_trials.jobs) == list(range(N_TRIALS))
    assert sorted(six_trials.jobs.values()) == sorted(six_trials.sacct), (six_trials.jobs, six_trials.sacct)


def test_the_study_and_mlflow_agree_on_the_six_trials(six_trials):
    trials = six_trials.trials
    assert len(trials) == N_TRIALS and all(t.state in FINISHED for t in trials), \
        [(t.number, t.state.name) for t in trials]
    runs = assert_one_parent_one_child_per_trial(six_trials)
    for trial in trials:
        run = runs[trial.number]
        assert run.data.tags["sweeper.state"] == trial.state.name
        assert run.info.status == ("FAILED" if trial.state == TrialState.FAIL else "FINISHED")
        assert trial.user_attrs["run_id"] == run.info.run_id


def test_the_median_pruner_stops_trials_inside_their_slurm_jobs(six_trials):
    trials = six_trials.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.state.name, t.params.get("optimizer.lr")) for t in trials]
    runs = {int(c.data.tags["sweeper.trial"]): c for c in six_trials.children}
    for trial in pruned:
        # The job reported each epoch to the storage and stopped when the pruner said so there:
        # its curve ends early, its SLURM job ended normally, its run says where it stopped.
        assert max(trial.intermediate_values) < 10
        assert six_trials.sacct[six_trials.jobs[trial.number]] == "COMPLETED"
        epochs_run = int(runs[trial.number].data.metrics["epochs_run"])
        assert epochs_run == max(trial.intermediate_values)
        assert runs[trial.number].info.run_name == f"trial-{trial.number} (pruned @{epochs_run})"


# -- 3. scancel of a running trial's job, and a job killed outright --------------------------------

CANCEL_TRIALS, CANCEL_EPOCHS = 2, 1000


@pytest.fixture(scope="module")
def cancelled_job(slurm, database, mlflow_server, tmp_path_factory):
    """Two trials of 1000 epochs at once (~5 s of training each). Once both are seen training
    (their first epochs' values are in the storage), one job is cancelled with ``scancel`` and
    the other's Python is killed with SIGKILL, as the out-of-memory killer does (a job whose
    node dies gets no chance to react either). ``scancel --signal=KILL`` would not do: SLURM
    takes it as a plain cancel, SIGTERM first."""
    study, base = unique_name("scancel"), tmp_path_factory.mktemp("scancel")
    sweep_dir = base / "multirun"
    args = slurm_sweep_args(database, study, mlflow_server.url, sweep_dir,
                            f"hydra.sweeper.n_trials={CANCEL_TRIALS}", f"hydra.sweeper.n_jobs={CANCEL_TRIALS}",
                            "hydra.sweeper.pruner=none", f"train.epochs={CANCEL_EPOCHS}",
                            "train.early_stopping.patience=null")
    worker = Worker(args, base / "sweep.log", env={"SLURM_CONF": str(slurm.conf)})
    victims: dict[str, tuple[int, str]] = {}  # how it was stopped -> (trial number, SLURM job id)
    deadline = time.monotonic() + SWEEP_TIMEOUT
    try:
        while not victims and time.monotonic() < deadline and worker.process.poll() is None:
            time.sleep(0.2)
            try:
                running = optuna.load_study(study_name=study, storage=database).get_trials(
                    deepcopy=False, states=(TrialState.RUNNING,))
            except KeyError:  # the study is not created yet
                continue
            jobs = slurm_jobs_of(sweep_dir)
            training = [(t.number, jobs[t.number]) for t in running if t.intermediate_values and t.number in jobs]
            if len(training) == CANCEL_TRIALS:
                victims = {"scancel": training[0], "SIGKILL": training[1]}
                slurm.run("scancel", victims["scancel"][1])
                slurm.kill_task(victims["SIGKILL"][1])
        assert victims, f"the two trials were never seen training together:\n{worker.output()[-3000:]}"
        wait_all([worker], timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if worker.process.poll() is None:
            worker.kill()
    scenario = sweep_state(slurm, database, study, mlflow_server.url, sweep_dir, worker)
    scenario.victims = victims
    return scenario


@pytest.mark.parametrize("how, sacct_state", [("scancel", "CANCELLED"), ("SIGKILL", "FAILED")])
def test_a_stopped_job_shows_in_sacct_and_its_retry_completes(cancelled_job, how, sacct_state):
    number, job_id = cancelled_job.victims[how]
    assert cancelled_job.sacct[job_id] == sacct_state, cancelled_job.sacct
    # Two jobs stopped, then the two retries, each in a job of its own.
    assert len(cancelled_job.sacct) == 2 * CANCEL_TRIALS, cancelled_job.sacct
    retries = [t for t in cancelled_job.trials if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == number]
    assert len(retries) == 1
    assert cancelled_job.sacct[cancelled_job.jobs[retries[0].number]] == "COMPLETED"


@pytest.mark.parametrize("how, sacct_state", [("scancel", "CANCELLED"), ("SIGKILL", "FAILED")])
def test_a_stopped_jobs_trial_is_fail_and_retried_once_with_the_same_parameters(cancelled_job, how, sacct_state):
    trials = {t.number: t for t in cancelled_job.trials}
    number, job_id = cancelled_job.victims[how]
    lost = trials[number]
    reason = f"its SLURM job {job_id} ended {sacct_state} without a result"
    assert lost.state == TrialState.FAIL and lost.user_attrs["reason"] == reason
    [retry] = [t for t in trials.values() if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == number]
    assert retry.params == lost.params and retry.state == TrialState.COMPLETE
    assert f"trial {number} FAIL  {reason} | retried once with the same parameters" in cancelled_job.worker.output()


def test_the_study_ends_with_exactly_n_trials_counted_and_none_running(cancelled_job):
    trials = cancelled_job.trials
    assert all(t.state in FINISHED for t in trials), [(t.number, t.state.name) for t in trials]
    lost = {number for number, _ in cancelled_job.victims.values()}
    assert len(trials) == 2 * CANCEL_TRIALS
    assert sum(t.number not in lost for t in trials) == CANCEL_TRIALS  # the retries count instead


def test_the_stopped_trials_mlflow_runs_end_killed_or_failed_never_running(cancelled_job):
    runs = assert_one_parent_one_child_per_trial(cancelled_job)
    assert all(run.info.status != "RUNNING" for run in runs.values())
    # scancel: the job stopped at its SIGTERM (submitit alone would ignore it and train on) and
    # ended its own run.
    run = runs[cancelled_job.victims["scancel"][0]]
    assert (run.info.status, run.data.tags["sweeper.state"]) == ("KILLED", "FAIL")
    assert "SIGTERM" in run.data.tags["sweeper.fail_reason"]
    assert len(cancelled_job.client.get_metric_history(run.info.run_id, "train_loss")) < CANCEL_EPOCHS
    # SIGKILL: nothing in the job could end its run; the sweeper did, with the trial's reason.
    number, job_id = cancelled_job.victims["SIGKILL"]
    run = runs[number]
    assert (run.info.status, run.data.tags["sweeper.state"]) == ("FAILED", "FAIL")
    assert run.data.tags["sweeper.fail_reason"] == f"its SLURM job {job_id} ended FAILED without a result"


# -- 4. no password in what SLURM and submitit keep ------------------------------------------------

def test_the_storage_password_is_in_no_job_script_pickle_or_log(six_trials, cancelled_job, slurm):
    swept = [path for scenario in (six_trials, cancelled_job)
             for path in scenario.worker.log.parent.rglob("*") if path.is_file()]
    kinds = {"_submission.sh", "_submitted.pkl", "_result.pkl", "_log.out", "_log.err", "sweeper.log", "hydra.yaml"}
    assert {kind for kind in kinds for path in swept if path.name.endswith(kind)} == kinds
    assert [str(path) for path in swept if PG_PASSWORD.encode() in path.read_bytes()] == []
    # SLURM's own files: its daemons' logs and the batch scripts slurmctld keeps. The password
    # reaches the jobs in the environment sbatch exports (PGPASSWORD), which slurmctld keeps
    # (mode 0600) beside each script until the job record is purged: there, and nowhere else.
    kept = [path for path in slurm.base.rglob("*") if path.is_file()]  # the accounting database too
    assert any(path.name == "script" for path in kept) and any(path.suffix == ".log" for path in kept)
    leaks = [path for path in kept if PG_PASSWORD.encode() in _contents(path)]
    assert all(path.name == "environment" and path.stat().st_mode & 0o077 == 0 for path in leaks), leaks


def _contents(path: Path) -> bytes:
    """A file's bytes; none for one a running daemon removed since it was listed."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


# -- 5. Ctrl-C of the sweeper --------------------------------------------------------------------

def test_ctrl_c_of_the_sweeper_cancels_the_jobs_of_its_batch(slurm, database, mlflow_server, tmp_path):
    """SLURM jobs do not die with the process that submitted them: a sweep interrupted while its
    batch trains cancels the batch, and its trials are FAIL, to be retried when it runs again."""
    study, sweep_dir = unique_name("ctrl-c"), tmp_path / "multirun"
    worker = Worker(slurm_sweep_args(database, study, mlflow_server.url, sweep_dir, "hydra.sweeper.n_trials=2",
                                     "hydra.sweeper.n_jobs=2", "hydra.sweeper.pruner=none",
                                     f"train.epochs={CANCEL_EPOCHS}", "train.early_stopping.patience=null"),
                    tmp_path / "sweep.log", env={"SLURM_CONF": str(slurm.conf)})
    deadline = time.monotonic() + SWEEP_TIMEOUT
    try:
        while time.monotonic() < deadline and worker.process.poll() is None:
            time.sleep(0.2)
            try:
                trials = optuna.load_study(study_name=study, storage=database).trials
            except KeyError:  # the study is not created yet
                continue
            if sum(bool(t.intermediate_values) for t in trials) == 2:
                break
        os.killpg(worker.process.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
        assert worker.wait(timeout=60) == 130, worker.output()[-3000:]
    finally:
        if worker.process.poll() is None:
            worker.kill()
    left = time.monotonic() + 30  # cancelled jobs stay listed while SLURM ends them
    while slurm.squeue("--name", study) and time.monotonic() < left:
        time.sleep(0.5)
    assert slurm.squeue("--name", study) == []
    assert sorted(slurm.sacct(*submitted_arrays(sweep_dir)).values()) == ["CANCELLED", "CANCELLED"]
    trials = optuna.load_study(study_name=study, storage=database).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.user_attrs.get("reason") for t in failed] == ["interrupted (Ctrl-C)"] * 2
    # Their retries wait, with the same parameters, for the command to run again.
    retries = {optuna.storages.RetryFailedTrialCallback.retried_trial_number(t): t for t in trials
               if t.state == TrialState.WAITING}
    assert {number: t.params for number, t in retries.items()} == {t.number: t.params for t in failed}


# -- without the extra ----------------------------------------------------------------------------

@pytest.mark.parametrize("launcher,modules", [
    ("slurm", ("hydra_plugins.hydra_submitit_launcher", "hydra_plugins.hydra_submitit_launcher.config",
               "hydra_plugins.hydra_submitit_launcher.submitit_launcher")),
    ("joblib", ("hydra_plugins.hydra_joblib_launcher", "hydra_plugins.hydra_joblib_launcher.config",
                "hydra_plugins.hydra_joblib_launcher.joblib_launcher")),
])
def test_a_launcher_without_its_extra_is_one_line(tmp_path, launcher, modules):
    """``hydra/launcher=slurm`` (or ``joblib``) where its Hydra plugin is not installed (its
    modules made unimportable here): one line naming the extra, exit status 2, before anything runs."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in modules)
    code = f"import sys; {blocked}; from sweeper.__main__ import command; command()"
    proc = subprocess.run([sys.executable, "-c", code, "-m", f"hydra/launcher={launcher}", "search=small",
                           f"hydra.sweep.dir={tmp_path / 'multirun'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: hydra/launcher={launcher} needs the [{launcher}] extra: "
                                                f"pip install -e '.[{launcher}]'"]
    assert not (tmp_path / "multirun").exists()


def _import_what_is_not_there() -> None:
    import sweeper_is_not_installed_on_this_node  # noqa: F401


def test_a_job_whose_python_fails_outside_the_trial_returns_a_failure_naming_the_error(tmp_path):
    """A job whose Python raises before the trial runs (the project missing on a node, say):
    submitit pickles the traceback as the job's result, and the launcher returns it as that
    trial's failure, naming the error, instead of raising it out of the whole batch. A real
    submitit job, run by submitit's local executor (the same Job API, no SLURM needed)."""
    import submitit
    from hydra.core.utils import JobStatus

    from sweeper.launcher.slurm import job_return

    job = submitit.LocalExecutor(folder=tmp_path).submit(_import_what_is_not_there)
    returned = job_return(job, ["x=1"])
    assert returned.status == JobStatus.FAILED and returned.overrides == ["x=1"]
    assert str(returned._return_value) == (f"its SLURM job {job.job_id} failed: ModuleNotFoundError: "
                                           "No module named 'sweeper_is_not_installed_on_this_node'")
