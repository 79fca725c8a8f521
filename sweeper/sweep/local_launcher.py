"""Jobs on this machine: what Hydra's default launcher does, with cheaper configs and processes.

When ``hydra/launcher`` is Hydra's default (``basic``), the sweeper launches its jobs with
:class:`LocalLauncher` instead. Each job is still Hydra's ``run_job`` on the job's config, so
``multirun/DATE/TIME/N``, each job's ``.hydra/`` files and its log are as before; two things
differ:

- a job's config comes from :meth:`JobConfigs.job_config` (the cached composition of its
  config-group options with its values set), ~10 ms instead of a ~0.1 s compose;
- with ``hydra.sweeper.n_jobs=N > 1``, jobs run in N worker processes started once for the sweep,
  and :meth:`LocalLauncher.launch` may be called from N threads at once, so the sweeper's lanes
  (:meth:`TrialLoop._lanes`) keep N trials running: when one ends the next starts. A worker is
  forked from multiprocessing's fork server, which imports the app once, so starting one costs
  milliseconds (Hydra's joblib launcher starts fresh interpreters: ~10 s); each trains with one
  BLAS thread. A worker that dies mid-job (killed, out of memory) makes that job a
  :class:`~sweeper.errors.JobLost` (its trial FAIL, retried once) and is replaced.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import gc
import importlib
import inspect
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from sweeper.errors import JobLost, one_line, sendable
from sweeper.sweep import trial_link
from sweeper.sweep.job_configs import fork_context
from sweeper.tracking import plots

log = logging.getLogger(__name__)


#: What the fork server imports once (beside the sweeper's own start, on another core), so a
#: worker forked from it starts with what a job imports already imported: ~1.5 s less for each
#: worker's first job. A module missing here is skipped.
PRELOAD = ("numpy", "pandas", "optuna", "optuna.storages.journal", "mlflow", "mlflow.tracking",
           "mlflow.store.tracking.sqlalchemy_store", "alembic.command", "git", "matplotlib.figure",
           "matplotlib.backends.backend_agg", "sweeper.tracking.plots", "sweeper.tracking.mlflow_run",
           "sweeper.train", "sweeper.data")
# Not what the sweep's end imports where it draws the parent's plots (optuna.importance, Optuna's
# matplotlib plots), beside the best model: where scikit-learn is installed, optuna.importance
# imports its ensembles (~1 s), which the fork server would pay for in every sweep (and every
# worker's start). The drawing process imports them once it runs, while trials train.
END_IMPORTS = ("optuna.importance", "optuna.visualization.matplotlib")


def replaces(config: DictConfig) -> bool:
    """Whether the sweep's launcher is Hydra's default one, ``hydra/launcher=basic`` (this module
    then runs the jobs)."""
    return config.hydra.runtime.choices.get("hydra/launcher") == "basic"


def _task_reference(task_function: TaskFunction) -> tuple[str, str]:
    """(module, name) a worker imports the task function by: ``@hydra.main`` wraps the function
    it is given, so the name finds the wrapper, which the worker unwraps."""
    module, name = task_function.__module__, task_function.__qualname__
    found = getattr(importlib.import_module(module), name, None) if "<" not in name else None
    if found is None or inspect.unwrap(found) is not task_function:
        raise ValueError(f"hydra.sweeper.n_jobs > 1 runs jobs in worker processes, which import the task "
                         f"function: {module}.{name} is not importable (define it at a module's top level)")
    return module, name


class LocalLauncher:
    """Runs a sweep's jobs as Hydra's basic launcher does, in this process (``n_jobs`` 1) or in
    ``n_jobs`` worker processes (see the module's docstring)."""

    def __init__(self, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig,
                 job_config: Callable[[list[str]], DictConfig], n_jobs: int) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        self.job_config = job_config
        self.workers = _Workers(n_jobs, hydra_context, _task_reference(task_function)) if n_jobs > 1 else None
        # One trial at a time here: its picture is drawn on the idle core (where processes fork).
        self.drawing = _drawing_process() if self.workers is None and _forks() else None
        self.drawing_started = False
        self.launched = False  # whether a job was launched (drawing_executor)

    @property
    def concurrent_jobs(self) -> bool:
        """Whether ``launch`` may be called from several threads at once."""
        return self.workers is not None

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        """Run the jobs of ``job_overrides`` (numbered from ``initial_job_idx``) and return how
        each ended, in order."""
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        self.launched = True
        configs = []
        log.info("Launching %d jobs locally", len(job_overrides))  # Hydra's words (hydra.verbose shows them)
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            cfg = self.job_config(list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = idx
                cfg.hydra.job.num = idx
            configs.append(cfg)
        if self.workers is not None:
            return [self.workers.run(cfg) for cfg in configs]
        self._start_drawing()
        setup_globals()
        returns = []
        for cfg in configs:
            returns.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function, config=cfg,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns

    def warm_up(self) -> None:
        """The space is checked: the drawing process may import what it draws with now."""
        self._start_drawing()

    def _start_drawing(self) -> None:
        """Send the drawing process its first call (``_ready``: its imports, ~2.5 s of a core)
        once: when the space is checked (``warm_up``) or else as the first job starts, so it is
        ready by the first picture instead of starting with it (a short sweep's end waited for
        it). Sent with the sweep's start, it slowed the start while the check and MLflow's
        import kept both cores busy."""
        if self.drawing is not None and not self.drawing_started:
            self.drawing_started = True
            self.drawing.executor.submit(_ready)

    def drawing_executor(self) -> Any:
        """What runs a call in another process, ``submit(fn, *args) -> Future``: the drawing
        process, or the worker processes, idle by then (the sweep's end draws its plots there
        while it logs the best model); None where there is none."""
        if not self.launched:  # no job ran: the processes may still be starting, for nothing
            return None
        if self.workers is not None:
            return None if self.workers.closed else self.workers
        return self.drawing.executor if self.drawing is not None else None

    def stop_jobs(self) -> None:
        """Ctrl-C: stop the jobs running in worker processes (an in-process job got it itself)."""
        if self.workers is not None:
            self.workers.stop_jobs()

    def close(self, finished: bool = True) -> None:
        """Stop the worker processes, or wait for the pictures still being drawn when the sweep
        ``finished`` (after a failure they are dropped: the store may be what failed)."""
        if self.workers is not None:
            self.workers.close()
        if self.drawing is not None:
            self.drawing.close(wait=finished)
            self.drawing.executor.close(kill=not finished)


def _forks() -> bool:
    """Whether this platform has multiprocessing's fork server (Linux, macOS; not Windows, where
    workers are spawned: each imports the app itself, and pictures are drawn in the trial)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def _drawing_process() -> plots.DeferredDrawing:
    """One process that draws and logs each trial's ``loss_curves.png`` while the next trial
    trains (:class:`plots.DeferredDrawing`).

    Where a fork is safe (``job_configs.fork_context``: Linux, and as the sweep starts this
    process runs one thread and has opened no store), it is forked from this process now: it
    starts with what the sweeper imported, and a sweep pays for no fork server's interpreter
    and imports (~2.5 s of a core, which a short sweep's end waited for). Elsewhere it is forked
    from multiprocessing's fork server at its first call. Its first call, ``_ready``, imports
    what it draws with: sent by ``LocalLauncher.warm_up`` once the space is checked (the core
    the check used is idle while MLflow's store opens), or as the first job starts."""
    context = fork_context()
    if context is not None:
        drawer = _Drawer(context)
        drawer.start()
        return plots.DeferredDrawing(drawer)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return plots.DeferredDrawing(_Drawer(context))


class _Drawer:
    """One process running the calls :meth:`submit` sends it, in order, fed over a pipe by one
    thread of this process (which gives each call's ``Future``). The sweeper's end of the pipe
    is the process's only link: when the sweeper ends, however it ends (SIGKILL included), the
    process reads end-of-file and exits. (``ProcessPoolExecutor``'s worker holds both ends of
    its queue, and outlives a killed sweeper for ever, keeping the fork server alive.)"""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sweeper-drawing")
        self.conn: Any = None
        self.process: Any = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        return self.thread.submit(self._call, fn, args)

    def start(self) -> None:
        """Start the process (done by the first call, if not before)."""
        if self.process is None:
            self.conn, child = self.context.Pipe()
            # A forked process gets this end too: it closes it, so that the sweeper's end,
            # however it comes, is its end-of-file.
            self.process = self.context.Process(target=_draw, args=(child, self.conn), name="sweeper-drawing",
                                                daemon=True)
            self.process.start()
            child.close()

    def _call(self, fn: Callable[..., Any], args: tuple) -> Any:
        self.start()
        self.conn.send((fn, args))
        failed, result = self.conn.recv()
        if failed:
            raise result
        return result

    def close(self, kill: bool = False) -> None:
        """Drop the calls not started; the process ends on end-of-file once its call is done,
        or at once with ``kill`` (a failed sweep: its call may be waiting on the broken store)."""
        self.thread.shutdown(wait=False, cancel_futures=True)
        if kill and self.process is not None and self.process.pid is not None:
            with contextlib.suppress(Exception):  # already ended, or still starting
                self.process.kill()
        if self.conn is not None:
            self.conn.close()


def _ready() -> None:
    """The drawing process's first call: it imports what it draws and logs the pictures with
    (``PRELOAD``, already there when forked from the fork server) and what the sweep's end draws
    the parent run's plots with (``END_IMPORTS``, ~1.5 s), so neither the first picture nor the
    end waits for it."""
    for name in (*PRELOAD, *END_IMPORTS):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()  # what it imported stays: no collection walks it again


def _outcome(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    """In the drawing process or a worker: ``(False, fn(*args))``, or ``(True, the error)`` sent
    back so that the call's Future raises it in the sweeper."""
    try:
        return False, fn(*args)
    except Exception as err:
        return True, sendable(err)


def _draw(conn: Any, sweepers_end: Any = None) -> None:
    """The drawing process: run each call received on ``conn`` and send back its result, until
    the sweeper's end closes (``sweepers_end``: that end, which a forked process holds too and
    closes). Ctrl-C in a terminal reaches every process of it: this one leaves it to the
    sweeper, which waits for the drawings already sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sweepers_end is not None and not sweepers_end.closed:
        sweepers_end.close()
    gc.freeze()  # what the sweeper (or the fork server) imported stays: no collection walks it again
    gc.enable()  # forked from a sweep still starting: cli.run_command had turned it off
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(_outcome(fn, args))
        except (EOFError, OSError):
            return


class _Workers:
    """``n`` worker processes, each running one job at a time; started in the background so the
    sweep's own start overlaps theirs."""

    def __init__(self, n: int, hydra_context: HydraContext, task: tuple[str, str]) -> None:
        self.context = multiprocessing.get_context("forkserver" if _forks() else "spawn")
        if _forks():
            self.context.set_forkserver_preload([*PRELOAD, task[0]])
        # Hydra's singletons (its config store, job runtime) without OmegaConf's resolvers, which
        # do not pickle: the worker registers Hydra's with setup_globals, the app's on import.
        self.args = (hydra_context, task, Singleton.get_state()["instances"], os.getpid())
        self.idle: queue.Queue[Any] = queue.Queue()  # idle (process, conn), or _WAKE / None
        self.busy: set[Any] = set()  # the processes running a job
        self.failed: list[str] = []  # why a worker could not start
        self.all: list[tuple[Any, Any]] = []
        self.lock = threading.Lock()
        self.closed = False
        for _ in range(n):
            self._replace()

    def _replace(self) -> None:
        threading.Thread(target=self._start, name="sweeper-worker-start", daemon=True).start()

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(child, *self.args), name="sweeper-worker", daemon=True)
        with self.lock:
            if self.closed:
                return
        try:
            process.start()  # the first start waits for the fork server's imports: not under the lock
        except Exception as err:
            self.failed.append(one_line(err))
            self.idle.put(None)  # wakes a job waiting for a worker, which then fails
            return
        child.close()
        with self.lock:
            self.all.append((process, parent))
            if self.closed:  # stopped meanwhile: close() no longer sees it
                parent.close()
                return
        self.idle.put((process, parent))

    def run(self, cfg: DictConfig) -> JobReturn:
        """Run one job on an idle worker (waiting for one), and return how it ended."""
        worker = self.idle.get()
        if worker is None:
            raise RuntimeError(f"hydra.sweeper.n_jobs: a worker process could not start: {self.failed[0]}")
        with self.lock:
            if self.closed or worker is _WAKE:  # Ctrl-C came first: this job never starts
                self.idle.put(worker)
                return JobReturn(status=JobStatus.FAILED, _return_value=JobLost(INTERRUPTED))
            process, conn = worker
            self.busy.add(process)
        try:
            # The sweeper's environment as it is now (a password moved there after the workers
            # started: sweeper.tracking.store.password_to_environment) goes with each job.
            conn.send((cfg, dict(os.environ)))
            ret = conn.recv()
        except (EOFError, OSError):
            process.join(timeout=5)
            ret = JobReturn(status=JobStatus.FAILED, _return_value=JobLost(
                f"its worker process (pid {process.pid}) ended without a result (exit code {process.exitcode})"))
            self._retire(process, conn)
            return ret
        except Exception as err:  # a result that does not unpickle here
            ret = JobReturn(status=JobStatus.FAILED,
                            _return_value=RuntimeError(f"the job's result could not be read: {one_line(err)}"))
        if isinstance(ret._return_value, JobLost):
            process.join(timeout=5)  # an interrupted worker ends after sending its result
            self._retire(process, conn)
            return ret
        with self.lock:
            self.busy.discard(process)
        self.idle.put((process, conn))
        return ret

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the next idle worker (the sweep's end: no job is running then),
        from a thread of this process; its ``Future`` gives the result or raises the error."""
        future: concurrent.futures.Future = concurrent.futures.Future()

        def call() -> None:
            worker = self.idle.get()
            if worker is None or worker is _WAKE:
                self.idle.put(worker)
                future.set_exception(RuntimeError("no worker process is left to run it"))
                return
            process, conn = worker
            try:
                conn.send(_Call(fn, args))
                failed, result = conn.recv()
            except Exception as err:  # the worker ended, or what it sent does not unpickle
                future.set_exception(RuntimeError(f"its worker process (pid {process.pid}) failed: {one_line(err)}"))
                return  # not handed out again: the sweep is ending
            self.idle.put(worker)
            if failed:
                future.set_exception(result)
            else:
                future.set_result(result)

        threading.Thread(target=call, name="sweeper-worker-call", daemon=True).start()
        return future

    def _retire(self, process: Any, conn: Any) -> None:
        """Forget a worker that ended, and start another unless the sweep is stopping."""
        conn.close()
        with self.lock:
            self.busy.discard(process)
            if (process, conn) in self.all:
                self.all.remove((process, conn))
            if not self.closed:
                self._replace()

    def stop_jobs(self, timeout: float = 15) -> None:
        """Interrupt the running jobs (Ctrl-C): each worker's trial ends as an interrupted one
        (its MLflow run KILLED) and its result comes back; a lane still waiting for a worker
        gets an interrupted job without one. Then the workers stop."""
        with self.lock:
            self.closed = True
            busy = list(self.busy)
        self.idle.put(_WAKE)
        for process in busy:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in busy:
            process.join(timeout=timeout)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            workers = list(self.all)
        for _, conn in workers:
            conn.close()  # a worker waiting for a job ends on end-of-file
        for process, _ in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)


_WAKE = object()  # put on the idle queue by stop_jobs: a lane waiting for a worker stops waiting


def _serve(conn: Any, hydra_context: HydraContext, task: tuple[str, str], singletons: dict, sweeper: int) -> None:
    """A worker: run each job config received on ``conn`` with Hydra's ``run_job`` and send back
    its ``JobReturn``, until the sweeper closes the connection or ends (``sweeper``: its pid)."""
    # Ctrl-C in a terminal reaches every process of it: the sweeper alone decides, and stops a
    # running job with SIGTERM (LocalLauncher.stop_jobs), which ends its trial interrupted.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupted)
    gc.freeze()  # what the fork server imported stays: no collection walks it again
    threading.Thread(target=_stop_without, args=(sweeper,), name="sweeper-watch", daemon=True).start()
    task_function = inspect.unwrap(getattr(importlib.import_module(task[0]), task[1]))
    setup_globals()
    Singleton.set_state({"instances": singletons, "omegaconf_resolvers": _resolvers()})
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if isinstance(message, _Call):
            try:
                conn.send(_outcome(message.fn, message.args))
            except (EOFError, OSError, KeyboardInterrupt):
                return
            continue
        cfg, environment = message
        os.environ.update(environment)
        interrupted = False
        try:
            ret = run_job(hydra_context=hydra_context, task_function=task_function, config=cfg,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        except KeyboardInterrupt:
            ret = JobReturn(status=JobStatus.FAILED, _return_value=JobLost(INTERRUPTED))
            interrupted = True
        try:
            conn.send(ret)
        except (EOFError, OSError, KeyboardInterrupt):
            return
        except Exception as err:  # a result that does not pickle
            ret.return_value = RuntimeError(f"the job's result could not be sent back: {one_line(err)}")
            ret.status = JobStatus.FAILED
            conn.send(ret)
        if interrupted:
            return


def _stop_without(sweeper: int) -> None:
    """In a worker: once the sweeper's process is gone (SIGKILL), stop the running trial as
    Ctrl-C would (its MLflow run KILLED; the next sweep fails and retries it as an orphan)
    instead of training it to the end for nobody; an idle worker just ends."""
    global _stop_reason
    while True:
        time.sleep(1)
        try:
            os.kill(sweeper, 0)
        except ProcessLookupError:
            _stop_reason = "its sweeper process ended"
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except PermissionError:
            pass


@dataclasses.dataclass(frozen=True)
class _Call:
    """What ``_Workers.submit`` sends a worker instead of a job: ``fn(*args)``."""

    fn: Callable[..., Any]
    args: tuple


#: A trial whose job the sweeper stopped (Ctrl-C): the reason its trial and MLflow run give.
INTERRUPTED = "interrupted (Ctrl-C)"


#: Why the sweeper stopped this worker's job: Ctrl-C, unless the watcher found the sweeper gone.
_stop_reason = "Ctrl-C"


def _interrupted(signum: int, frame: Any) -> None:
    trial_link.interrupt(_stop_reason)


def _resolvers() -> dict:
    """OmegaConf's resolvers registered in this process (Hydra's, the app's)."""
    from omegaconf.basecontainer import BaseContainer

    return dict(BaseContainer._resolvers)
