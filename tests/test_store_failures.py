"""A store that stops working mid-sweep stops the sweep with one line; the same command resumes.

Real faults, really caused: the ``mlruns`` folder made read-only under a running sweep (as root,
whom file modes do not stop, with ``chattr +i``), and a real ``mlflow server`` killed under a
running sweep, then started again. Each test reads back what Optuna and MLflow stored: the sweep
started no trial after the one the fault hit, and the rerun completes ``n_trials`` with that
trial retried and no trial or run left RUNNING.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from tests import components, zygote
from tests.servers import PG_BIN, PG_PASSWORD, MlflowServer, PostgresServer
from .stores import load_study
from .zygote import command_env

pytestmark = pytest.mark.slow

N_TRIALS = 4
STUDY = "faults"
PROGRESS = re.compile(r"\btrial (\d+) (COMPLETE|PRUNED|FAIL)\b")


class Sweep:
    """``python -m sweeper -m`` in the background, its stdout and stderr in files."""

    def __init__(self, folder: Path, mlflow_uri: str, optuna_url: str, *extra: str, **env_vars: str) -> None:
        self.out, self.err = folder / "stdout.txt", folder / "stderr.txt"
        env = command_env({"PYTHONUNBUFFERED": "1", **env_vars})
        # One network a trial (split.folds=1): the epoch counts below time one network.
        args = ["-m", "search=small", "split.folds=1", f"hydra.sweeper.n_trials={N_TRIALS}",
                f"hydra.sweeper.study_name={STUDY}",
                f"hydra.sweeper.storage={optuna_url}", f"mlflow.tracking_uri={mlflow_uri}",
                f"hydra.sweep.dir={folder / 'multirun'}", *extra]
        self.process = zygote.shared().start(["-m", "sweeper", *args], env, folder, self.out, self.err)

    def wait_for_trials(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(PROGRESS.findall(self.out.read_text())) < count:
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the sweep still ran {timeout:.0f}s after the fault:\n{self.text()}") from None

    def text(self) -> str:
        return self.out.read_text() + self.err.read_text()


def the_one_error_line(sweep: Sweep, *keys: str) -> str:
    """stderr says the fault once, naming one of ``keys``, with no traceback (Optuna's own INFO
    lines aside)."""
    stderr = sweep.err.read_text()
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[I ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(tuple(f"error: {key}=" for key in keys)), lines[0]
    assert "rerun the same command to resume" in lines[0]
    return lines[0]


def assert_stopped_at_the_fault(optuna_url: str, between_trials_ok: bool = False) -> int | None:
    """No trial started after the one the fault hit: it is the last trial, and the only one that
    neither completed nor was pruned. Returns its number; None when the fault came between two
    trials and stopped the sweep before it asked for the next (``between_trials_ok``)."""
    everything = load_study(STUDY, optuna_url).trials
    trials = [t for t in everything if t.state != TrialState.WAITING]  # its retry, queued
    hit = [t.number for t in trials if t.state not in (TrialState.COMPLETE, TrialState.PRUNED)]
    if not hit and between_trials_ok:
        return None
    assert hit == [trials[-1].number], [(t.number, t.state.name) for t in everything]
    return hit[0]


def assert_resumed_to_the_end(optuna_url: str, mlflow_uri: str, hit: int | None) -> None:
    """The rerun finished the study: ``N_TRIALS`` trials count (the one the fault hit counts through
    its retry, with the same parameters), none RUNNING in Optuna or MLflow."""
    trials = load_study(STUDY, optuna_url).trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in trials)
    if hit is None:  # the fault stopped the sweep between trials: nothing to retry
        assert len(trials) == N_TRIALS
    else:
        retries = [t for t in trials if t.system_attrs.get("failed_trial") == hit]
        # The same parameters (a trial hit while it was being asked has only some: the rest are new).
        assert len(retries) == 1 and trials[hit].params.items() <= retries[0].params.items()
        assert trials[hit].state == TrialState.FAIL
        assert len(trials) == N_TRIALS + 1
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("car_prices").experiment_id])
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    [parent] = [r for r in runs if r.data.tags.get("sweeper.study") == STUDY]
    assert parent.info.status == "FINISHED"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert {int(r.data.tags["sweeper.trial"]) for r in children} >= {t.number for t in trials if t.number != hit}


class ReadOnly:
    """``make(folder)``: nothing in ``folder`` can be written any more, by this user or by root
    (whom file modes do not stop: ``chattr +i`` then); ``undo()`` gives it back.

    ``folder`` itself stays open for new entries: Optuna's journal lock is a symlink made and
    removed there around each write (``optuna.log.lock``), and a folder frozen while it holds one
    keeps it for ever, Optuna waiting for it for ever (a storage folder that turns read-only in
    the middle of a write: left to Optuna). Every file in it, and every folder below it, is
    frozen: the journal, MLflow's database and artifacts, the sweeper's budget lock. Symlinks
    are left alone (``chattr`` refuses them)."""

    def __init__(self) -> None:
        self.root = os.geteuid() == 0
        self.made: list[Path] = []

    def make(self, folder: Path) -> None:
        self.made.append(folder)
        self._walk(folder, writable=False, top=True)

    def undo(self) -> None:
        for folder in self.made:
            self._walk(folder, writable=True, top=True)
        self.made = []

    def _walk(self, folder: Path, *, writable: bool, top: bool = False) -> None:
        """A sub-folder first, then what it holds: once a folder is immutable, its entries stay."""
        if not top:
            self._set([folder], writable)
        try:
            entries = [path for path in folder.iterdir() if not path.is_symlink()]
        except FileNotFoundError:  # removed by the sweep in between, as _set passes over
            return
        self._set([path for path in entries if path.is_file()], writable)
        for path in entries:
            if path.is_dir():
                self._walk(path, writable=writable)

    def _set(self, paths: list[Path], writable: bool) -> None:
        """A file the running sweep removes in between (SQLite's ``mlflow.db-journal`` lives for
        one transaction) is passed over: only a failure on a file still there is one."""
        for path in paths:
            try:
                if self.root:
                    done = subprocess.run(["chattr", "-i" if writable else "+i", str(path)],
                                          capture_output=True, text=True)
                    if done.returncode and path.exists():
                        raise OSError(f"chattr on {path} failed: {done.stderr.strip()}")
                else:
                    mode = path.stat().st_mode
                    path.chmod(mode | 0o200 if writable else mode & ~0o222)
            except FileNotFoundError:
                continue


@pytest.fixture
def read_only():
    if os.geteuid() == 0:
        components.chattr()
    folders = ReadOnly()
    yield folders
    folders.undo()


def test_mlruns_made_read_only_stops_the_sweep_in_one_line_and_the_rerun_resumes(
        tmp_path, mlflow_uri, optuna_url, read_only):
    sweep = Sweep(tmp_path, mlflow_uri, optuna_url, "train.epochs=30")
    sweep.wait_for_trials(1)
    read_only.make(tmp_path / "mlruns")  # both stores: MLflow's database and artifacts, and Optuna's
    assert sweep.wait(timeout=60) != 0
    # Whichever the sweep touched first: a running job's MLflow run, or the next ask of Optuna.
    line = the_one_error_line(sweep, "mlflow.tracking_uri", "hydra.sweeper.storage")
    # The store's own words, which depend on the moment: MLflow's SQLite says "unable to open
    # database file", "attempt to write a readonly database" or "disk I/O error"; Optuna's
    # journal file, the OS's "Operation not permitted" on its lock.
    if line.startswith("error: mlflow.tracking_uri="):
        assert " failed: OperationalError: " in line
    else:
        assert " failed: PermissionError: " in line and "optuna.log" in line, line
    read_only.undo()
    hit = assert_stopped_at_the_fault(optuna_url, between_trials_ok=True)

    again = Sweep(tmp_path, mlflow_uri, optuna_url, "train.epochs=30")
    assert again.wait(timeout=300) == 0, again.text()
    assert_resumed_to_the_end(optuna_url, mlflow_uri, hit)


def test_a_store_that_stops_working_under_two_concurrent_trials_stops_the_sweep_in_one_line(
        tmp_path, mlflow_uri, optuna_url, read_only):
    """The joblib launcher's lanes: whichever lane meets the fault first (asking, or telling its
    trial) stops every lane with one line, and the rerun finishes the study with nothing left
    RUNNING."""
    # grace_period=5: a trial whose sweeper lost the storage as it asked for it is failed and
    # retried 5 s after it started rather than 60 (the rerun waits for that when it fills the budget).
    joblib = ("hydra/launcher=joblib", "hydra.sweeper.n_jobs=2", "hydra.launcher.n_jobs=2", "train.epochs=30",
              "hydra.sweeper.grace_period=5")
    sweep = Sweep(tmp_path, mlflow_uri, optuna_url, *joblib)
    sweep.wait_for_trials(1, timeout=180)
    read_only.make(tmp_path / "mlruns")
    assert sweep.wait(timeout=120) != 0
    the_one_error_line(sweep, "mlflow.tracking_uri", "hydra.sweeper.storage")
    read_only.undo()
    # Trials still running when the storage broke could not be told FAIL there: the rerun fails
    # and retries them as orphans (their sweeper process is gone).
    again = Sweep(tmp_path, mlflow_uri, optuna_url, *joblib)
    assert again.wait(timeout=300) == 0, again.text()
    trials = load_study(STUDY, optuna_url).trials
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL) for t in trials)
    retried = {t.system_attrs.get("failed_trial") for t in trials} - {None}
    assert len([t for t in trials if t.number not in retried]) == N_TRIALS


@pytest.fixture
def server(tmp_path, mlflow_uri) -> MlflowServer:
    """An ``mlflow server`` on SQLite (``mlflow_uri``'s file), stopped at teardown."""
    started = MlflowServer(mlflow_uri, tmp_path / "server" / "artifacts", workers=1)
    try:
        yield started.start()
    finally:
        started.stop()


#: MLflow's retries cut to about 1 + 2 + 4 s (the default ~30 s is timed by test_run's unreachable
#: server): the sweep's own wait between trials follows the same budget.
SHORT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def test_the_mlflow_server_killed_stops_the_sweep_within_its_retry_budget_and_the_rerun_resumes(
        tmp_path, server, mlflow_uri, optuna_url):
    sweep = Sweep(tmp_path, server.url, optuna_url, "train.epochs=40", **SHORT_RETRIES)
    sweep.wait_for_trials(1)
    server.stop()
    killed = time.monotonic()
    assert sweep.wait(timeout=90) != 0
    took = time.monotonic() - killed
    line = the_one_error_line(sweep, "mlflow.tracking_uri")
    assert server.url in line
    # 7 s of retries for the call in flight, or of waiting between trials, then the way out:
    # bounded by that budget and the sweep's end on a loaded machine (MLflow's client alone,
    # with its own defaults, retries for over four minutes).
    assert took < 60, (took, line)
    hit = assert_stopped_at_the_fault(optuna_url, between_trials_ok=True)

    server.start()
    again = Sweep(tmp_path, server.url, optuna_url, "train.epochs=40")
    assert again.wait(timeout=300) == 0, again.text()
    assert_resumed_to_the_end(optuna_url, mlflow_uri, hit)


def test_postgresql_stopped_mid_sweep_stops_it_in_one_line_naming_the_storage_and_the_rerun_resumes(
        tmp_path, mlflow_uri):
    """The study's database crashes under a running sweep (a cluster of its own, stopped as a
    crash would): one line naming ``hydra.sweeper.storage`` that says the store stopped
    answering, not SQLAlchemy's bare ``InvalidatePoolError: ()``; once it is back, the same
    command finishes the study."""
    components.require_path(components.POSTGRESQL, PG_BIN / "initdb", "PostgreSQL's initdb")
    database = PostgresServer().start()
    try:
        url = database.url(database.create_database())
        sweep = Sweep(tmp_path, mlflow_uri, url, "train.epochs=40")
        sweep.wait_for_trials(1)
        database.pause()
        assert sweep.wait(timeout=120) != 0
        line = the_one_error_line(sweep, "hydra.sweeper.storage")
        assert "***" not in line and PG_PASSWORD not in line and "()" not in line, line
        database.resume()
        hit = assert_stopped_at_the_fault(url, between_trials_ok=True)
        again = Sweep(tmp_path, mlflow_uri, url, "train.epochs=40")
        assert again.wait(timeout=300) == 0, again.text()
        assert_resumed_to_the_end(url, mlflow_uri, hit)
    finally:
        database.stop()


def test_between_trials_a_server_that_comes_back_within_the_budget_is_waited_for(monkeypatch):
    """The sweeper's check before each trial rides out a short outage (MLflow's own retries do
    the same for a call in flight), and gives up with one StoreError after the budget."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from sweeper.errors import StoreError
    from sweeper.tracking.store import store_patience, wait_until_alive
    from tests.servers import free_port

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    patience = store_patience()
    assert patience == 7
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Health, bind_and_activate=False)
    started = time.monotonic()
    later = threading.Timer(2.0, lambda: (server.server_bind(), server.server_activate(), server.serve_forever()))
    later.start()
    try:
        wait_until_alive(f"http://127.0.0.1:{port}")  # down for 2 s, then up: no error
        # It waited for the server (up 2 s after `started` at the earliest), and returned
        # within its budget: the server came back inside it.
        assert 2.0 <= time.monotonic() - started < patience
    finally:
        server.shutdown()
        server.server_close()
        later.join()
    started = time.monotonic()
    with pytest.raises(StoreError, match=f"mlflow.tracking_uri=http://127.0.0.1:{port}: reaching the MLflow server failed"):
        wait_until_alive(f"http://127.0.0.1:{port}")  # down for good
    # It gave up at the first look after its budget (it looks once a second): the budget, not
    # later than the machine's delay allows.
    assert patience <= time.monotonic() - started < patience + 10


def test_the_default_budget_is_about_30_seconds(monkeypatch):
    from sweeper.tracking.store import store_patience

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name)  # sweeper.tracking set them, unless the user had
    import importlib

    import sweeper.tracking

    importlib.reload(sweeper.tracking)
    assert store_patience() == 30
