"""Scale-out: many workers, one Optuna study in PostgreSQL, one MLflow server (issue 6).

Every server here is real and started by the fixtures in ``tests/servers.py`` on 127.0.0.1;
every worker is the real CLI, ``python -m sweeper -m …``, in a process of its own.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests import zygote
from tests.curves import epoch_values
from tests.servers import (PG_PASSWORD, database, free_port, mlflow_server, postgres,  # noqa: F401
                           postgres_url)
from tests.stores import load_study
from tests.workers import (FINISHED, PROGRESS, Worker, mlflow_sweep, sweep_args,
                           unique_name, wait_all)
from tests.zygote import command_env

pytestmark = [
    pytest.mark.slow,
    # Heartbeats and RetryFailedTrialCallback are "experimental" in Optuna 5.
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


def test_postgres_fixture_serves_a_database_optuna_can_share(postgres_url, postgres):
    conn = postgres.connect(postgres_url.rsplit("/", 1)[1])
    with conn, conn.cursor() as cur:
        cur.execute("SHOW server_version_num")
        assert int(cur.fetchone()[0]) >= 150000
    conn.close()

    study = optuna.create_study(study_name="fixture", storage=postgres_url, direction="minimize")
    study.optimize(lambda trial: (trial.suggest_float("x", -1, 1)) ** 2, n_trials=3)
    # A second client, as another worker would be, sees the same trials through the server.
    again = load_study("fixture", postgres_url)
    assert [t.number for t in again.trials] == [0, 1, 2]
    assert again.best_value == study.best_value


def test_mlflow_server_fixture_keeps_runs_metrics_and_artifacts(mlflow_server, tmp_path):
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment_id = client.create_experiment(f"fixture-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    for epoch, loss in enumerate([0.9, 0.5, 0.3], start=1):
        client.log_metric(run.info.run_id, "val_loss", loss, step=epoch)
    note = tmp_path / "note.txt"
    note.write_text("served by the tracking server")
    client.log_artifact(run.info.run_id, str(note))
    client.set_terminated(run.info.run_id)

    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.9), (2, 0.5), (3, 0.3)]
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    # --artifacts-destination: the file went through the server to its artifacts directory.
    stored = list(mlflow_server.artifacts.rglob("note.txt"))
    assert len(stored) == 1 and stored[0].read_text() == "served by the tracking server"
    assert mlflow_server.backend_store_uri.startswith("postgresql+psycopg2://")


# -- workers: the real CLI, as separate processes -----------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CURVES = ("train_loss", "val_loss", "test_loss", "lr")


def can_fake_hostname() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def assert_full_curves(client: MlflowClient, run) -> None:
    """Every per-epoch curve has one point per epoch the run trained, epochs 1..epochs_run."""
    epochs_run = int(run.data.metrics["epochs_run"])
    assert epochs_run >= 1
    for key in CURVES:
        steps = sorted(epoch_values(client, run.info.run_id, key))
        assert steps == list(range(1, epochs_run + 1)), (run.info.run_id, key, steps)


def start_workers(count: int, base: Path, args_for, hostnames=()) -> list[Worker]:
    workers = []
    for i in range(count):
        folder = base / f"worker{i}"
        folder.mkdir(parents=True)
        hostname = hostnames[i] if i < len(hostnames) else None
        workers.append(Worker(args_for(folder), folder / "worker.log", hostname=hostname))
    return workers


# -- 1. three workers, one study in PostgreSQL, one MLflow server -------------------------------

N_TRIALS = 12


@pytest.fixture(scope="module")
def three_workers(database, mlflow_server, tmp_path_factory):
    """Three workers started together on the same sweep command; the finished state."""
    study_name, experiment = unique_name("S"), unique_name("three-workers")

    def args_for(folder: Path) -> list[str]:
        return sweep_args(database, study_name, mlflow_server.url, experiment, folder / "multirun",
                          f"hydra.sweeper.n_trials={N_TRIALS}", "train.epochs=5")

    workers = start_workers(3, tmp_path_factory.mktemp("three-workers"), args_for)
    wait_all(workers, timeout=180)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    parents, children = mlflow_sweep(client, experiment)
    return SimpleNamespace(
        study_name=study_name, storage=database, workers=workers, client=client, parents=parents,
        children=children, trials=load_study(study_name, database).trials)


def test_three_workers_finish_exactly_n_trials_each_run_by_one_worker(three_workers):
    trials = three_workers.trials
    assert len(trials) == N_TRIALS, [(t.number, t.state.name) for t in trials]
    assert all(t.state in FINISHED for t in trials)
    told = [w.trials_told() for w in three_workers.workers]
    # Every trial number was run and told by exactly one worker, and the work was shared.
    assert sorted(n for numbers in told for n in numbers) == list(range(N_TRIALS)), told
    assert sum(bool(numbers) for numbers in told) >= 2, told


def test_three_workers_log_n_child_runs_with_full_curves_under_one_parent(three_workers):
    client, parents, children = three_workers.client, three_workers.parents, three_workers.children
    assert len(parents) == 1, [p.data.tags for p in parents]
    parent = parents[0]
    assert parent.data.tags["sweeper.study"] == three_workers.study_name
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert sorted(int(c.data.tags["sweeper.trial"]) for c in children) == list(range(N_TRIALS))
    state_of = {t.number: t.state.name for t in three_workers.trials}
    for child in children:
        number = int(child.data.tags["sweeper.trial"])
        assert child.data.tags["sweeper.state"] == state_of[number]
        if state_of[number] != "FAIL":
            assert child.info.status == "FINISHED"
            assert_full_curves(client, child)


def test_the_storage_password_is_in_no_output_file_attribute_or_mlflow_record(three_workers, tmp_path):
    folders = {worker.log.parent for worker in three_workers.workers}
    files = [path for folder in folders for path in folder.rglob("*") if path.is_file()]
    assert any(path.name == "hydra.yaml" for path in files) and any(path.name == "multirun.yaml" for path in files)
    leaks = [str(path) for path in files if PG_PASSWORD.encode() in path.read_bytes()]
    assert leaks == []  # worker logs (stdout and stderr), every job's .hydra/*.yaml, multirun.yaml
    # The jobs were told a URL (in their overrides, never in a log line): without the password.
    told = [p for p in files if p.name == "hydra.yaml" and b"SWEEPER_STORAGE" in p.read_bytes()]
    assert told and "SWEEPER_STORAGE" not in three_workers.workers[0].output()
    for trial in three_workers.trials:
        assert PG_PASSWORD not in repr(trial.system_attrs) + repr(trial.user_attrs)
    storage = optuna.storages.RDBStorage(three_workers.storage)
    study_id = storage.get_study_id_from_name(three_workers.study_name)
    study_attrs = repr(storage.get_study_system_attrs(study_id)) + repr(storage.get_study_user_attrs(study_id))
    assert "sweeper:identity" in study_attrs and PG_PASSWORD not in study_attrs
    client = three_workers.client
    for run in [*three_workers.parents, *three_workers.children]:
        assert PG_PASSWORD not in repr(run.data.params) + repr(run.data.tags)
        client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id))
    artifacts = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {"config.yaml", "best_config.yaml", "trials.csv"} <= {path.name for path in artifacts}
    assert [str(path) for path in artifacts if PG_PASSWORD.encode() in path.read_bytes()] == []


def test_workers_started_together_do_not_repeat_each_others_trials(three_workers):
    params = [tuple(sorted(t.params.items())) for t in three_workers.trials]
    repeated = sorted({p for p in params if params.count(p) > 1})
    assert not repeated, f"{len(params) - len(set(params))} trials repeat another's parameters"


def test_workers_tagging_their_parent_run_at_once_all_start(mlflow_server):
    """Workers that start together on one study each set the sweep's tags on its parent run (a
    PostgreSQL-backed MLflow server here, where a worker once stopped at start on "duplicate key
    value violates unique constraint tag_pk"): six at once, on fresh runs, every one succeeds."""
    from sweeper.sweep.parent_run import set_tags

    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment_id = client.create_experiment(f"tags-{uuid.uuid4().hex[:8]}")
    tags = {f"sweeper.tag{i}": f"value {i}" for i in range(6)}
    for _ in range(5):
        run_id = client.create_run(experiment_id).info.run_id
        barrier, errors = threading.Barrier(6), []

        def worker() -> None:
            own = MlflowClient(tracking_uri=mlflow_server.url)
            barrier.wait()
            try:
                set_tags(own, run_id, tags, {})
            except Exception as error:  # noqa: BLE001 - what a worker would have died of
                errors.append(error)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == [], [str(e).splitlines()[0] for e in errors]
        assert tags.items() <= client.get_run(run_id).data.tags.items()


# -- 2. a worker killed with SIGKILL mid-trial --------------------------------------------------

KILL_TRIALS = 6


@pytest.fixture(scope="module")
def killed_worker(database, mlflow_server, tmp_path_factory):
    """Three workers; once all three are mid-trial, one is SIGKILLed and a fresh one started.

    The victim runs under another host name (when the tests run as root, as CI does), so the
    survivors cannot see that its process died: only its missing heartbeats can tell them.
    """
    study_name, experiment = unique_name("K"), unique_name("killed-worker")

    def args_for(folder: Path) -> list[str]:
        # Heartbeats every second, stale after 3: the killed worker's trial is found quickly.
        # 1000 epochs train for ~5 s: a job stores its reported values once a second, so a
        # trial is seen mid-training for most of its life, and three at once is the rule (with
        # 20 epochs, only between its last write and its end; with 400, about half its life).
        return sweep_args(database, study_name, mlflow_server.url, experiment, folder / "multirun",
                          f"hydra.sweeper.n_trials={KILL_TRIALS}", "train.epochs=1000",
                          "train.early_stopping.patience=null", "hydra.sweeper.pruner=none",
                          "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3")

    base = tmp_path_factory.mktemp("killed-worker")
    victim_host = ["worker-on-another-host"] if can_fake_hostname() else []
    workers = start_workers(3, base, args_for, hostnames=victim_host)
    deadline = time.monotonic() + 120
    running: list = []
    while time.monotonic() < deadline:
        try:
            study = load_study(study_name, database)
            trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:  # no worker has created the study yet
            trials = []
        running = [t for t in trials if t.intermediate_values]  # training, past epoch 1
        if len(running) == 3:
            break
        time.sleep(0.1)
    else:
        for w in workers:
            w.kill()
        pytest.fail("the three workers were never mid-trial at the same time")
    victim = workers[0]
    victim.kill()
    restarted = Worker(args_for(base / "worker0"), base / "worker0" / "restarted.log")
    survivors = [*workers[1:], restarted]
    wait_all(survivors, timeout=180)
    client = MlflowClient(tracking_uri=mlflow_server.url)
    parents, children = mlflow_sweep(client, experiment)
    return SimpleNamespace(
        running_at_kill={t.number for t in running}, survivors=survivors, parents=parents,
        children=children, trials=load_study(study_name, database).trials)


def victims_trial(scenario):
    """The one trial that was running at the kill and did not finish as COMPLETE or PRUNED."""
    lost = [t for t in scenario.trials if t.number in scenario.running_at_kill
            and t.state not in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(lost) == 1, [(t.number, t.state.name) for t in scenario.trials]
    return lost[0]


def test_the_other_workers_finish_the_study_after_one_is_killed(killed_worker):
    trials = killed_worker.trials
    lost = victims_trial(killed_worker)
    assert all(t.state in FINISHED for t in trials if t.number != lost.number)
    assert len(killed_worker.parents) == 1
    numbers = [int(c.data.tags["sweeper.trial"]) for c in killed_worker.children]
    assert len(numbers) == len(set(numbers)), sorted(numbers)
    assert all(c.info.status != "RUNNING" for c in killed_worker.children
               if int(c.data.tags["sweeper.trial"]) != lost.number)


def test_the_killed_workers_trial_ends_fail_once_its_heartbeat_stops(killed_worker):
    trials = killed_worker.trials
    lost = victims_trial(killed_worker)
    assert lost.state == TrialState.FAIL
    # Nothing left RUNNING or WAITING, and exactly n_trials counted: FAIL counts, except the
    # killed trial, which its retry replaces.
    assert all(t.state in FINISHED for t in trials), [(t.number, t.state.name) for t in trials]
    assert sum(t.state in FINISHED for t in trials if t.number != lost.number) == KILL_TRIALS
    [run] = [c for c in killed_worker.children if int(c.data.tags["sweeper.trial"]) == lost.number]
    assert (run.info.status, run.data.tags["sweeper.state"]) == ("FAILED", "FAIL")
    # The worker that found it says so in its progress lines.
    line = f"trial {lost.number} FAIL its sweeper stopped sending heartbeats | retried once with the same parameters"
    assert any(line in w.log.read_text() for w in killed_worker.survivors)


def test_the_killed_trial_is_retried_with_the_same_parameters(killed_worker):
    lost = victims_trial(killed_worker)
    retries = [t for t in killed_worker.trials
               if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == lost.number]
    assert len(retries) == 1, "no trial retries the killed one"
    assert retries[0].params == lost.params
    assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)


WORKERS_AT_ONCE = 6


def _at_a_barrier(n: int, target, *args) -> list:
    """Run ``target(*args, barrier, results)`` in ``n`` forked processes (they start with the
    libraries imported) released together at a barrier; each one's outcome from ``results``."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        return [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


def _open_storage_at_barrier(url: str, barrier, results) -> None:
    from sweeper.sweep.storage import open_storage

    try:
        barrier.wait(timeout=60)
        open_storage(url)
        results.put("ok")
    except Exception as err:  # noqa: BLE001  (the test reports whatever a worker hit)
        results.put(f"{type(err).__name__}: {str(err).splitlines()[0]}")


def test_workers_opening_a_fresh_database_at_once_all_get_the_storage(postgres_url):
    """Workers started together on an empty database all create Optuna's tables at once.

    Without the schema lock, six workers lost this race about one run in six on two cores
    ("relation studies already exists").
    """
    outcomes = _at_a_barrier(WORKERS_AT_ONCE, _open_storage_at_barrier, postgres_url)
    assert outcomes == ["ok"] * WORKERS_AT_ONCE, outcomes


def test_a_worker_creates_optunas_tables_only_under_the_schema_lock(postgres_url):
    """While another session holds the schema lock, a worker on an empty database waits for it."""
    from sweeper.sweep.storage import _schema_lock

    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(1), ctx.Queue()
    with _schema_lock(postgres_url):
        proc = ctx.Process(target=_open_storage_at_barrier, args=(postgres_url, barrier, results))
        proc.start()
        try:
            with pytest.raises(queue.Empty):
                results.get(timeout=3)  # still waiting for the lock
            tables = _public_tables(postgres_url)
        except BaseException:
            proc.kill()
            raise
    assert results.get(timeout=60) == "ok"
    proc.join(timeout=10)
    assert "studies" not in tables
    assert "studies" in _public_tables(postgres_url)


def _public_tables(url: str) -> set[str]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# -- 3. the joblib launcher on SQLite ------------------------------------------------------------

class BlasProbe(Callback):
    """A Hydra callback that runs inside each job's process: records its pid and BLAS threads.

    ``on_job_end`` runs after the task function, in the process that ran it, so it sees the
    pinning the job process keeps (environment set before the process started, or
    ``threadpoolctl.threadpool_limits(1)`` left in force).
    """

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_job_end(self, config, job_return, **kwargs) -> None:
        from threadpoolctl import threadpool_info

        blas = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
        record = {"pid": os.getpid(), "blas_threads": blas}
        Path(self.out_dir, f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))


def probe_args(out_dir: Path) -> list[str]:
    return ["+hydra.callbacks.blas_probe._target_=tests.test_scale_out.BlasProbe",
            f"+hydra.callbacks.blas_probe.out_dir={out_dir}"]


JOBLIB_TRIALS = 8


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory):
    """One sweep under ``hydra/launcher=joblib`` with two trials at a time, pruning on."""
    tmp = tmp_path_factory.mktemp("joblib")
    probes = tmp / "probes"
    probes.mkdir()
    storage, tracking = f"sqlite:///{tmp / 'optuna.db'}", f"sqlite:///{tmp / 'mlflow.db'}"
    args = sweep_args(storage, "joblib", tracking, "joblib", tmp / "multirun",
                      "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.launcher.n_jobs=2",
                      f"hydra.sweeper.n_trials={JOBLIB_TRIALS}", "hydra.sweeper.sampler=random",
                      "hydra.sweeper.pruner=median",
                      "+hydra.sweeper.pruner_kwargs.n_startup_trials=2",
                      "+hydra.sweeper.pruner_kwargs.n_warmup_steps=1",
                      # Half the learning rates are far too small: the pruner has work to do.
                      "optimizer.lr=tag(log,interval(1e-6,0.1))", "train.epochs=10",
                      *probe_args(probes))
    # A shell that exports more BLAS threads than the worker may use (as SLURM's
    # OMP_NUM_THREADS=cpus-per-task does): each trial's process must still use one.
    env = {"PYTHONPATH": str(ROOT), **{v: "2" for v in ("OMP_NUM_THREADS",
                                                        "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    worker = Worker(args, tmp / "sweep.log", env=env)
    wait_all([worker], timeout=180)
    job_logs = "".join(p.read_text(errors="replace") for p in (tmp / "multirun").rglob("*.log"))
    return SimpleNamespace(
        worker=worker, output=worker.output() + job_logs,
        trials=load_study("joblib", storage).trials,
        probes=[json.loads(p.read_text()) for p in probes.glob("*.json")])


def test_joblib_sweep_on_sqlite_finishes_without_database_locked(joblib_sweep):
    trials = joblib_sweep.trials
    assert len(trials) == JOBLIB_TRIALS
    assert all(t.state in FINISHED for t in trials), [(t.number, t.state.name) for t in trials]
    assert "database is locked" not in joblib_sweep.output.lower()
    assert not [t for t in trials if t.state == TrialState.FAIL], \
        [t.user_attrs.get("reason") for t in trials if t.state == TrialState.FAIL]


def test_joblib_runs_trials_at_once_in_separate_processes(joblib_sweep):
    pids = {record["pid"] for record in joblib_sweep.probes}
    assert len(joblib_sweep.probes) == JOBLIB_TRIALS
    assert joblib_sweep.worker.process.pid not in pids and len(pids) >= 2, pids
    spans = sorted((t.datetime_start, t.datetime_complete) for t in joblib_sweep.trials)
    overlapping = sum(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))
    assert overlapping >= JOBLIB_TRIALS // 4, spans


def test_pruning_reaches_trials_running_in_joblib_processes(joblib_sweep):
    trials = joblib_sweep.trials
    # Every trial reported its epochs to the storage from its own process...
    assert all(t.intermediate_values for t in trials)
    # ...and the pruner, reading them there, stopped some trials early.
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.state.name) for t in trials]
    assert all(max(t.intermediate_values) < 10 for t in pruned)


def test_each_joblib_job_process_uses_one_blas_thread(joblib_sweep):
    threads = {record["pid"]: record["blas_threads"] for record in joblib_sweep.probes}
    assert threads and all(counts == [1] * len(counts) and counts for counts in threads.values()), \
        threads


# -- 4. a wrong storage URL, an MLflow server that is down -------------------------------------

# A worker that cannot reach its stores says so within seconds of starting (Hydra and MLflow
# imports take a few); MLflow's own HTTP retries would keep it waiting for minutes.
FAIL_FAST_SECONDS = 20


def assert_one_line_before_any_trial(worker: Worker, key: str) -> str:
    """Exit non-zero promptly with one line naming ``key``, no traceback, no trial started."""
    code = worker.wait(timeout=FAIL_FAST_SECONDS)
    output = worker.output()
    assert code != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if key in line]
    assert len(lines) == 1, output
    assert "Launching" not in output and not PROGRESS.search(output), output
    return lines[0]


@pytest.fixture(scope="module")
def wrong_storage(postgres, tmp_path_factory):
    """A worker pointed at a PostgreSQL database that does not exist."""
    tmp = tmp_path_factory.mktemp("wrong-storage")
    url = postgres.url(database="no_such_database")
    worker = Worker(sweep_args(url, "bad", f"sqlite:///{tmp / 'mlflow.db'}", "bad",
                               tmp / "multirun"), tmp / "worker.log")
    worker.wait(timeout=FAIL_FAST_SECONDS)
    return worker


def test_a_wrong_storage_url_stops_the_worker_with_one_line(wrong_storage):
    line = assert_one_line_before_any_trial(wrong_storage, "hydra.sweeper.storage")
    assert "no_such_database" in line


def test_the_line_for_a_wrong_storage_url_does_not_show_the_password(wrong_storage):
    assert PG_PASSWORD not in wrong_storage.output()


def test_an_mlflow_server_that_is_down_stops_the_worker_with_one_line(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    worker = Worker(sweep_args(storage, "down", down, "down", tmp_path / "multirun"),
                    tmp_path / "worker.log")
    line = assert_one_line_before_any_trial(worker, "mlflow.tracking_uri")
    assert down in line
    assert all(not study.n_trials for study in optuna.get_all_study_summaries(storage))


def test_a_password_given_only_through_pgpassword_reaches_every_job(database, tmp_path):
    """The standard libpq way: the URL has no password, $PGPASSWORD (or ~/.pgpass) has it."""
    from sqlalchemy.engine import make_url

    bare = make_url(database)._replace(password=None).render_as_string(hide_password=False)
    assert PG_PASSWORD not in bare
    study = unique_name("pgpassword")
    worker = Worker(sweep_args(bare, study, f"sqlite:///{tmp_path / 'mlflow.db'}", study, tmp_path / "multirun",
                               "hydra.sweeper.n_trials=2", "train.epochs=3"),
                    tmp_path / "worker.log", env={"PGPASSWORD": PG_PASSWORD})
    assert worker.wait(timeout=180) == 0, worker.output()[-3000:]
    trials = load_study(study, database).trials
    assert len(trials) == 2 and all(t.state in FINISHED for t in trials)
    assert all(t.intermediate_values for t in trials if t.state != TrialState.FAIL)  # the jobs reached it too
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".db"]
    assert [str(p) for p in files if PG_PASSWORD.encode() in p.read_bytes()] == []


def _run_sweeper(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` as a user would type it: no PGPASSWORD in the environment."""
    return zygote.shared().run(["-m", module, *args], command_env(scrubbed=("PGPASSWORD",)), cwd, timeout=300)


def test_a_password_in_the_tracking_uri_is_in_no_output_file_param_tag_or_artifact(postgres, tmp_path):
    """``mlflow.tracking_uri=postgresql+psycopg2://user:PW@host/db`` (MLflow's own database) on
    the command line of a run, a sweep and a rerun: everything runs, and the password is in no
    output line, no file under the working directory (Hydra's ``.hydra/*.yaml``, ``multirun.yaml``,
    the artifacts), no MLflow param, tag or artifact."""
    name = postgres.create_database()
    uri = postgres.url(name)
    assert PG_PASSWORD in uri
    single = _run_sweeper("sweeper", "train.epochs=3", f"mlflow.tracking_uri={uri}", "mlflow.experiment=pw",
                          cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    sweep = _run_sweeper("sweeper", "-m", "search=small", "hydra.sweeper.n_trials=2", "train.epochs=3",
                         f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}", f"mlflow.tracking_uri={uri}",
                         "mlflow.experiment=pw", f"hydra.sweep.dir={tmp_path / 'multirun'}", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("pw").experiment_id])
    assert len(runs) == 4  # the single run, the sweep's parent and its two trials
    first = [r for r in runs if "sweeper.study" not in r.data.tags and "mlflow.parentRunId" not in r.data.tags]
    rerun = _run_sweeper("sweeper.rerun", first[0].info.run_id, "--check", "--tracking-uri", uri, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    outputs = single.stdout + single.stderr + sweep.stdout + sweep.stderr + rerun.stdout + rerun.stderr
    assert PG_PASSWORD not in outputs
    for run in client.search_runs([client.get_experiment_by_name("pw").experiment_id]):
        assert PG_PASSWORD not in repr(run.data.params) + repr(run.data.tags)
        client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts" / run.info.run_id))
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".db"]
    assert any(p.name == "hydra.yaml" for p in files) and any(p.name == "config.yaml" for p in files)
    assert [str(p) for p in files if PG_PASSWORD.encode() in p.read_bytes()] == []
    postgres.drop_database(name)


# Unencoded, as a user types them: "#" (urlsplit once read a fragment there) and "@" (SQLAlchemy
# splits at the first one). Neither half may show anywhere.
HTTP_PASSWORD_HALVES = ("h7tp#first", "h7tp-second")
PG_PASSWORD_HALVES = ("pg#first", "pg-second")


def _sweeper_with(module: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``_run_sweeper`` with extra environment variables (none of the password variables inherited)."""
    full_env = command_env({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **(env or {})},
                           scrubbed=("PGPASSWORD", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"))
    return zygote.shared().run(["-m", module, *args], full_env, cwd, timeout=300)


def _leaks(halves: tuple[str, ...], texts: list[str], folder: Path, skip: tuple[Path, ...] = ()) -> list[str]:
    """Where a half of the password shows: in ``texts`` (by index) or in a file under ``folder``."""
    found = [f"output {i}" for i, text in enumerate(texts) if any(half in text for half in halves)]
    for path in folder.rglob("*"):
        if path.is_file() and path not in skip and any(half.encode() in path.read_bytes() for half in halves):
            found.append(str(path))
    return found


def test_a_password_in_mlflow_tracking_uri_or_a_config_file_reaches_nothing_a_run_or_sweep_writes(
        mlflow_server, tmp_path):
    """``http://user:pw@host`` with "#" and "@" in the password, from ``MLFLOW_TRACKING_URI`` and
    from a config file (``--config-dir``), for a run and a sweep against a server that needs no
    password (MLflow sends basic auth it does not need): all run; then the report (its HTML and
    the artifacts it logs) and the error lines of report, rerun and predict. No half of the
    password is in any output line, file under the folder (Hydra's ``.hydra/*.yaml``,
    ``multirun.yaml``, the report), MLflow param, tag or artifact."""
    experiment = unique_name("http-password")
    password = "@".join(HTTP_PASSWORD_HALVES)
    uri = mlflow_server.url.replace("http://", f"http://bob:{password}@")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "mine.yaml").write_text(f"defaults:\n  - config\n  - _self_\nmlflow:\n  tracking_uri: '{uri}'\n")
    from_file = ["--config-dir", str(conf), "--config-name", "mine"]
    from_env = {"MLFLOW_TRACKING_URI": uri}
    quick = ["train.epochs=2", f"mlflow.experiment={experiment}"]

    def sweep(name: str) -> list[str]:
        return ["-m", "search=small", "hydra.sweeper.n_trials=2", f"hydra.sweeper.study_name={name}",
                f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}", f"hydra.sweep.dir={tmp_path / name}"]

    finished = [_sweeper_with("sweeper", *quick, cwd=tmp_path, env=from_env),
                _sweeper_with("sweeper", *from_file, *quick, cwd=tmp_path),
                _sweeper_with("sweeper", *sweep("env-sweep"), *quick, cwd=tmp_path, env=from_env),
                _sweeper_with("sweeper", *from_file, *sweep("file-sweep"), *quick, cwd=tmp_path)]
    for proc in finished:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_server.url)
    parents, children = mlflow_sweep(client, experiment)
    assert len(parents) == 4 and len(children) == 4  # two runs, two sweeps' parents; two trials each

    report = _sweeper_with("sweeper.report", "--tracking-uri", uri, "--experiment", experiment,
                           "--out", str(tmp_path / "report"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report" / "report.html").read_text()
    assert f"store <code>{mlflow_server.url}</code>" in html
    refused = [_sweeper_with("sweeper.report", "--sweep", "abc", "--tracking-uri", uri, cwd=tmp_path),
               _sweeper_with("sweeper.report", "--sweep", "abc", cwd=tmp_path, env=from_env),
               _sweeper_with("sweeper.rerun", "abc", "--tracking-uri", uri, cwd=tmp_path),
               _sweeper_with("sweeper.rerun", "abc", cwd=tmp_path, env=from_env),
               _sweeper_with("sweeper.predict", "abc", str(tmp_path / "rows.csv"), "--tracking-uri", uri, cwd=tmp_path)]
    for proc in refused:
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert mlflow_server.url in proc.stderr, proc.stderr  # the store is named, without its password

    for run in parents + children:
        assert not any(half in repr(run.data.params) + repr(run.data.tags) for half in HTTP_PASSWORD_HALVES)
        client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts" / run.info.run_id))
    assert any(path.name == "report.html" for path in (tmp_path / "artifacts").rglob("*"))  # as the report logged it
    assert any(path.name == "hydra.yaml" for path in tmp_path.rglob("*"))
    assert any(path.name == "multirun.yaml" for path in tmp_path.rglob("*"))
    outputs = [text for proc in finished + [report] + refused for text in (proc.stdout, proc.stderr)]
    assert _leaks(HTTP_PASSWORD_HALVES, outputs, tmp_path, skip=(conf / "mine.yaml",)) == []


def test_a_postgresql_password_with_hash_and_at_reaches_the_database_and_nothing_written(postgres, tmp_path):
    """A role whose password holds "#" and "@", typed unencoded in ``hydra.sweeper.storage``: the
    sweep and its jobs reach PostgreSQL as that role, and no half of the password is in any
    output line or file (Hydra's ``.hydra/*.yaml``, ``multirun.yaml``)."""
    name = postgres.create_database()
    role = unique_name("role").replace("-", "_")
    password = "@".join(PG_PASSWORD_HALVES)
    admin = postgres.connect()
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
        cursor.execute(f'ALTER DATABASE "{name}" OWNER TO {role}')
    url = f"postgresql+psycopg2://{role}:{password}@127.0.0.1:{postgres.port}/{name}"
    study = unique_name("pg-password")
    sweep = _sweeper_with("sweeper", "-m", "search=small", "hydra.sweeper.n_trials=2", "train.epochs=2",
                          f"hydra.sweeper.storage={url}", f"hydra.sweeper.study_name={study}",
                          f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                          f"hydra.sweep.dir={tmp_path / 'multirun'}", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stdout[-2000:] + sweep.stderr[-3000:]
    trials = load_study(study, postgres.url(name)).trials
    assert len(trials) == 2 and all(t.state in FINISHED for t in trials)
    assert _leaks(PG_PASSWORD_HALVES, [sweep.stdout, sweep.stderr], tmp_path) == []
    postgres.drop_database(name)
    with admin.cursor() as cursor:
        cursor.execute(f"DROP ROLE {role}")
    admin.close()


RUNS_AT_ONCE = 6


def _log_dataset_at_barrier(uri: str, experiment_id: str, info: dict, barrier, results) -> None:
    from mlflow import MlflowClient

    from sweeper.tracking.mlflow_run import MlflowRun

    try:
        run = MlflowRun.start(MlflowClient(tracking_uri=uri), experiment_id)
        barrier.wait(timeout=60)
        run.log_dataset(info)
        run.end()
        results.put("ok")
    except Exception as err:  # noqa: BLE001  (the test reports whatever a run hit)
        results.put(f"{type(err).__name__}: {str(err).splitlines()[0]}")


def test_runs_starting_at_once_all_log_the_same_new_dataset(mlflow_server):
    """The tasks of a SLURM job array start their trials at the same moment, and each logs the
    sweep's CSV as its dataset input: the first one creates the dataset's row on the server, the
    others must link to it (they once failed on its unique key and stopped the sweep)."""
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment_id = client.create_experiment(unique_name("datasets-at-once"))
    info = {"path": "/data/cars.csv", "sha256": uuid.uuid4().hex * 2, "target": "price", "features": ["km"],
            "columns": {"km": {"kind": "numeric"}}, "rows": {"train": 8, "val": 1, "test": 1}}
    outcomes = _at_a_barrier(RUNS_AT_ONCE, _log_dataset_at_barrier, mlflow_server.url, experiment_id, info)
    assert outcomes == ["ok"] * RUNS_AT_ONCE, outcomes
    runs = client.search_runs([experiment_id])
    assert len(runs) == RUNS_AT_ONCE
    assert {tuple(d.dataset.digest for d in run.inputs.dataset_inputs) for run in runs} == {(info["sha256"][:16],)}
