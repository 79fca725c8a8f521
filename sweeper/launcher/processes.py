"""The processes a local sweep runs beside the sweeper: :class:`ForkedCall` (the space check),
:class:`Drawer` (the pictures) and :class:`Workers` (``n_jobs`` > 1), and the command's start-up.

Each holds a pipe to the sweeper as its only link: when the sweeper ends, however it ends
(SIGKILL included), the process reads end-of-file and exits; a worker running a job also
watches the sweeper's pid and stops its trial as Ctrl-C would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import importlib
import inspect
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from typing import Any, Callable, NamedTuple, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, run_job, setup_globals
from hydra.experimental.callback import Callback
from hydra.types import HydraContext

from sweeper import stop
from sweeper.errors import ConfigError, JobLost, failed_job, job_error, one_line, sendable

#: What a job imports (a run's own imports are lazy, so --help stays light); a missing one is skipped.
JOB_IMPORTS = ("numpy", "pandas", "mlflow", "mlflow.tracking", "sqlalchemy.orm", "alembic.command",
               "matplotlib.figure", "matplotlib.backends.backend_agg", "sweeper.data", "sweeper.train",
               "sweeper.tracking.mlflow_run", "sweeper.tracking.plots")
#: What the fork server imports once, beside the sweeper's start: a worker forked from it starts
#: with a job's imports done (the trial link's Optuna, MLflow's git tags): ~1.5 s less a first job.
PRELOAD = (*JOB_IMPORTS, "optuna", "optuna.storages.journal", "git")
# The parent's plots' imports are not preloaded: where scikit-learn is installed, optuna.importance
# imports its ensembles (~1 s) in every fork server; the drawing process imports them while trials train.
END_IMPORTS = ("optuna.importance", "optuna.visualization.matplotlib")

#: A job the sweeper stopped (Ctrl-C): the reason its trial and MLflow run give.
INTERRUPTED = "interrupted (Ctrl-C)"


def fork_context() -> Any:
    """multiprocessing's ``fork`` context where a fork is safe (Linux, and this process runs one
    thread; macOS forks unsafely once its system frameworks are loaded), else None."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return None
    return multiprocessing.get_context("fork")


def forks() -> bool:
    """Whether this platform has multiprocessing's fork server (not Windows, where workers are
    spawned and pictures are drawn in the trial)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def _outcome(fn: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    """In another process: ``(False, fn(*args))``, or ``(True, the error)`` for the sweeper to raise."""
    try:
        return False, fn(*args)
    except Exception as err:
        return True, sendable(err)


class ForkedCall:
    """``fn(*args)`` in a process forked now (``context``: :func:`fork_context`): it starts
    with this process's memory, so ``fn`` need not pickle; only its result does. Ctrl-C is the
    sweeper's: the process ignores it, and :meth:`result` stops it, then calls ``then()``."""

    def __init__(self, context: Any, fn: Callable[..., Any], args: tuple,
                 then: Callable[[], Any] | None = None) -> None:
        self.then = then
        self.receive, send = context.Pipe(duplex=False)
        self.process = context.Process(target=self._child, args=(send, fn, args), daemon=True,
                                       name="sweeper-call")
        self.process.start()
        send.close()

    @staticmethod
    def _child(send: Any, fn: Callable[..., Any], args: tuple) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with send:
            send.send(_outcome(fn, args))

    def result(self) -> Any:
        """``fn``'s result (its error raised); ChildProcessError if the process died first."""
        try:
            failed, value = self.receive.recv()
        except EOFError:
            failed, value = None, None
        except BaseException:  # Ctrl-C while waiting: the call is of no use any more
            self.process.kill()
            raise
        finally:
            self.receive.close()
            self.process.join()
            if self.then is not None:
                self.then()
        if failed is None:
            raise ChildProcessError(f"its process ended with exit code {self.process.exitcode}")
        if failed:
            raise value
        return value


class Drawer:
    """One process running the calls :meth:`submit` sends it, in order, fed over a pipe by one
    thread of this process (which gives each call's ``Future``). Where a fork is safe it is
    forked now, with what the sweeper imported (no fork server's interpreter and imports, ~2.5 s
    of a core); elsewhere it comes from multiprocessing's fork server at its first call.
    (``ProcessPoolExecutor``'s worker holds both ends of its queue, and outlives a killed
    sweeper for ever, keeping the fork server alive.)"""

    def __init__(self) -> None:
        self.context = fork_context() or multiprocessing.get_context("forkserver")
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sweeper-drawing")
        self.conn: Any = None
        self.process: Any = None
        if self.context.get_start_method() == "fork":
            self.start()  # while this process runs one thread
        else:
            self.context.set_forkserver_preload(list(PRELOAD))

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        return self.thread.submit(self._call, fn, args)

    def start(self) -> None:
        """Start the process (done by the first call, if not before)."""
        if self.process is None:
            self.conn, child = self.context.Pipe()
            # A forked process gets this end too, and closes it: the sweeper's end is its end-of-file.
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


def import_all(names: Sequence[str]) -> None:
    """Import each module of ``names`` that is installed."""
    for name in names:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def ready() -> None:
    """The drawing process's first call: it imports what the pictures need (``PRELOAD``) and the
    parent run's plots (``END_IMPORTS``, ~1.5 s), so neither the first picture nor the end waits."""
    import_all((*PRELOAD, *END_IMPORTS))
    gc.freeze()  # what it imported stays: no collection walks it again


def _draw(conn: Any, sweepers_end: Any) -> None:
    """The drawing process: run each call received on ``conn`` and send back its result, until
    the sweeper's end (``sweepers_end``, which it closes here) closes. Ctrl-C is the sweeper's,
    which waits for the drawings already sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sweepers_end.close()
    gc.freeze()  # what the sweeper (or the fork server) imported stays: no collection walks it again
    gc.enable()  # forked from a sweep still starting: the start-up had turned it off
    with contextlib.suppress(EOFError, OSError):  # the sweeper's end closed
        while True:
            fn, args = conn.recv()
            conn.send(_outcome(fn, args))


class _Call(NamedTuple):
    """What ``Workers.submit`` sends a worker instead of a job: ``fn(*args)``."""

    fn: Callable[..., Any]
    args: tuple


_WAKE = object()  # put on the idle queue by stop_jobs: a lane waiting for a worker stops waiting


class Workers:
    """``n`` worker processes, each running one Hydra job at a time, replaced when one dies (its
    job then comes back as :class:`~sweeper.errors.JobLost`). Started beside the sweep's start,
    each forked from multiprocessing's fork server, which imports ``PRELOAD`` and the task's module
    once: milliseconds a worker (joblib's fresh interpreters: ~10 s)."""

    def __init__(self, n: int, hydra_context: HydraContext, task: tuple[str, str]) -> None:
        self.context = multiprocessing.get_context("forkserver" if forks() else "spawn")
        if forks():
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

    def run(self, cfg: Any) -> JobReturn:
        """Run one job on an idle worker (waiting for one), and return how it ended."""
        worker = self.idle.get()
        if worker is None:
            raise RuntimeError(f"hydra.sweeper.n_jobs: a worker process could not start: {self.failed[0]}")
        with self.lock:
            if self.closed or worker is _WAKE:  # Ctrl-C came first: this job never starts
                self.idle.put(worker)
                return failed_job(JobLost(INTERRUPTED))
            process, conn = worker
            self.busy.add(process)
        try:
            # The sweeper's environment as it is now (a password moved there after the workers
            # started: sweeper.tracking.store.without_password) goes with each job.
            conn.send((cfg, dict(os.environ)))
            ret = conn.recv()
        except (EOFError, OSError):  # the worker ended without a result
            ret = None
        except Exception as err:  # a result that does not unpickle here
            ret = failed_job(RuntimeError(f"the job's result could not be read: {one_line(err)}"))
        if ret is not None and not isinstance(job_error(ret), JobLost):
            with self.lock:
                self.busy.discard(process)
            self.idle.put(worker)
            return ret
        process.join(timeout=5)  # an interrupted worker ends after sending its result
        conn.close()  # forget it, and start another unless the sweep is stopping
        with self.lock:
            self.busy.discard(process)
            if worker in self.all:
                self.all.remove(worker)
            if not self.closed:
                self._replace()
        if ret is None:
            ret = failed_job(JobLost(
                f"its worker process (pid {process.pid}) ended without a result (exit code {process.exitcode})"))
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


def _serve(conn: Any, hydra_context: HydraContext, task: tuple[str, str], singletons: dict, sweeper: int) -> None:
    """A worker: run each job config received on ``conn`` with Hydra's ``run_job`` and send back
    its ``JobReturn``, until the sweeper closes the connection or ends (``sweeper``: its pid)."""
    # Ctrl-C is the sweeper's, which stops a running job with SIGTERM (Workers.stop_jobs).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.interrupt(_stop_reason))
    gc.freeze()  # what the fork server imported stays: no collection walks it again
    threading.Thread(target=_stop_without, args=(sweeper,), name="sweeper-watch", daemon=True).start()
    task_function = inspect.unwrap(getattr(importlib.import_module(task[0]), task[1]))
    setup_globals()
    # Hydra's singletons as the sweeper has them, with this process's OmegaConf resolvers
    # (Hydra's, registered by setup_globals; the app's, on its import).
    Singleton.set_state({**Singleton.get_state(), "instances": singletons})
    with contextlib.suppress(EOFError, OSError, KeyboardInterrupt):  # the sweeper closed, ended or stopped it
        while True:
            message = conn.recv()
            if isinstance(message, _Call):
                conn.send(_outcome(message.fn, message.args))
                continue
            cfg, environment = message
            os.environ.update(environment)
            interrupted = False
            try:
                ret = run_job(hydra_context=hydra_context, task_function=task_function, config=cfg,
                              job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
            except KeyboardInterrupt:
                ret = failed_job(JobLost(INTERRUPTED))
                interrupted = True
            try:
                conn.send(ret)
            except (EOFError, OSError, KeyboardInterrupt):
                raise
            except Exception as err:  # a result that does not pickle
                conn.send(failed_job(RuntimeError(f"the job's result could not be sent back: {one_line(err)}")))
            if interrupted:
                return


#: Why the sweeper stopped this worker's job: Ctrl-C, unless the watcher found the sweeper gone.
_stop_reason = "Ctrl-C"


def _stop_without(sweeper: int) -> None:
    """In a worker: once the sweeper's process is gone (SIGKILL), stop the running trial as
    Ctrl-C would (its MLflow run KILLED; the next sweep fails and retries it as an orphan) rather
    than train it for nobody; an idle worker just ends."""
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


def task_reference(task_function: Callable[..., Any]) -> tuple[str, str]:
    """(module, name) a worker imports the task function by (it unwraps ``@hydra.main``'s wrapper)."""
    module, name = task_function.__module__, task_function.__qualname__
    found = getattr(importlib.import_module(module), name, None) if "<" not in name else None
    if found is None or inspect.unwrap(found) is not task_function:
        raise ConfigError(f"hydra.sweeper.n_jobs > 1 runs jobs in worker processes, which import the task "
                          f"function: {module}.{name} is not importable (define it at a module's top level)")
    return module, name


# -- the garbage collector while a command starts ------------------------------------------

_starting = False  # whether the command is still starting (start_up until start_up_done)


@contextlib.contextmanager
def start_up() -> Any:
    """A whole command (``python -m sweeper``), its garbage collector off while it starts.

    What the start makes (imports, Hydra's composition, the sweep's checks) lives as long as the
    process, and each full collection walks all of it (~20% of MLflow's, Optuna's and Hydra's
    import time). ``start_up_done`` freezes it out of later collections (its ~8% garbage with it,
    rather than a ~0.3 s full collection) and turns the collector on. What is left at the end is
    frozen out of the final pass too (~0.6 s walking MLflow, SQLAlchemy and matplotlib)."""
    global _starting
    _starting = True
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()


def start_up_done(job_here: bool = True) -> None:
    """The command's work starts: ``JOB_IMPORTS`` are imported (collector still off) if the job
    runs here (``job_here``), everything made so far is frozen, and collection resumes. A no-op
    outside ``start_up`` and after the first call."""
    global _starting
    if _starting:
        _starting = False
        import_all(JOB_IMPORTS if job_here else ())
        gc.freeze()
        gc.enable()


class StartUpDone(Callback):
    """A Hydra callback (``hydra.callbacks.start_up`` in ``conf/config.yaml``): a job's start ends
    the command's start-up (``start_up_done``); a sweep under another launcher than ``local``
    (which ends it in ``launch``) ends it as the sweep starts."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        start_up_done()

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        if config.hydra.runtime.choices.get("hydra/launcher") != "local":
            start_up_done(job_here=False)
