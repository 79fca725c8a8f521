"""Sweep workers for the scale-out tests: ``python -m sweeper -m …`` as real processes, and how
to read back what they left in MLflow (``tests/test_scale_out.py``, ``tests/test_slurm.py``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from tests import zygote
from tests.zygote import command_env

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
PROGRESS = re.compile(r"\btrial (\d+) (COMPLETE|PRUNED|FAIL)\b")


class Worker:
    """One ``python -m sweeper -m …`` process, its output in a log file.

    ``hostname``: run the worker under a host name of its own (a UTS namespace, root only), so
    the other workers see it as a worker on another machine whose processes they cannot check.
    """

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None,
                 hostname: str | None = None) -> None:
        self.log = log
        full_env = command_env({"PYTHONUNBUFFERED": "1", **(env or {})})
        cmd = [sys.executable, "-m", "sweeper", "-m", *args]
        if hostname is None:
            # Its own session: a kill reaches the worker and anything it started.
            self.process = zygote.shared().start(cmd[1:], full_env, log.parent, log, new_session=True)
            return
        # unshare and sh exec in place: the worker keeps this process's pid.
        cmd = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *cmd]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                cmd, cwd=log.parent, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"worker still running after {timeout:.0f}s:\n{self.output()[-3000:]}") from None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def trials_told(self) -> list[int]:
        """Trial numbers this worker reported as finished (its progress lines)."""
        return [int(n) for n, _ in PROGRESS.findall(self.output())]


def wait_all(workers: list[Worker], timeout: float) -> None:
    """Every worker exits 0 within ``timeout``; on any failure none is left running."""
    deadline = time.monotonic() + timeout
    try:
        for worker in workers:
            code = worker.wait(max(1.0, deadline - time.monotonic()))
            assert code == 0, f"worker exited with {code}:\n{worker.output()[-3000:]}"
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.kill()


def sweep_args(storage: str, study: str, tracking_uri: str, experiment: str, sweep_dir: Path,
               *extra: str) -> list[str]:
    # One network a trial (split.folds=1): the epoch counts these tests choose time one network.
    return ["search=small", "split.folds=1", f"hydra.sweeper.storage={storage}",
            f"hydra.sweeper.study_name={study}", f"mlflow.tracking_uri={tracking_uri}",
            f"mlflow.experiment={experiment}", f"hydra.sweep.dir={sweep_dir}", *extra]


def mlflow_sweep(client: MlflowClient, experiment: str) -> tuple[list, list]:
    """(parent runs, child runs) of the sweeps in ``experiment``."""
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_no_process_left(session: int, timeout: float = 10) -> None:
    """No process of session ``session`` (a sweep started with ``start_new_session``) is left
    ``timeout`` seconds after the sweep ended: its workers, drawing process and fork server
    read end-of-file on their pipe to it and exit."""
    deadline = time.monotonic() + timeout
    while (left := subprocess.run(["pgrep", "-s", str(session)], capture_output=True, text=True).stdout) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == "", subprocess.run(["ps", "-o", "pid,args", "-s", str(session)], capture_output=True, text=True).stdout
