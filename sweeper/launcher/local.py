"""``hydra/launcher=local`` (the default): Hydra's basic launcher, with cheaper configs and
processes. Each job is still Hydra's ``run_job`` (``multirun/DATE/TIME/N``, ``.hydra/``, its log
as under the basic launcher); what differs:

- a job's config comes from :meth:`sweeper.composer.Composer.job_config` (the cached
  composition of its group options, its values set): ~10 ms instead of a ~0.1 s compose;
- with ``n_jobs`` > 1 (``hydra.sweeper.n_jobs``, followed by the launcher's config), jobs run
  in N worker processes started once, each training with one BLAS thread, and :meth:`launch`
  may be called from N threads at once (``concurrent_launches``). A worker that dies mid-job
  makes that job a :class:`~sweeper.errors.JobLost` (its trial FAIL, retried once) and is replaced;
- with ``n_jobs`` = 1, jobs run in this process, and each ``loss_curves.png`` is drawn and
  logged in a drawing process while the next job trains: the task function receives it as
  ``drawing`` (:class:`Drawing`) when it takes that keyword.

Beside Hydra's ``Launcher`` contract it offers what :mod:`sweeper.sweep.launching` describes:
``concurrent_launches``, ``beside``, ``stop_jobs`` and ``close``. Any Hydra sweeper can use it.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import inspect
import logging
import sys
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from sweeper.composer import Composer
from sweeper.errors import one_line
from sweeper.launcher import processes

log = logging.getLogger(__name__)

#: How long a sweep's end waits for the pictures still being drawn (one takes ~0.1 s).
DRAWING_TIMEOUT = 60


class Drawing:
    """Where a job's ``loss_curves.png`` is drawn and logged off the job's path: the drawing
    process (a sweep running its trials one at a time in this process leaves a core idle), so
    the next trial starts ~100 ms a trial sooner (car_prices)."""

    def __init__(self, executor: processes.Drawer) -> None:
        self.executor = executor
        self.pending: list[concurrent.futures.Future] = []

    def loss_curves(self, history: Mapping[str, Sequence[float]], best_epoch: int, loss: str,
                    tracking_uri: str, run_id: str) -> None:
        """Draw ``history``'s curves and log them to MLflow run ``run_id`` (an ended run
        takes artifacts too)."""
        from sweeper.tracking import plots

        curves = {name: [float(v) for v in history[name]] for name in plots.DRAWN if name in history}
        self.pending.append(self.executor.submit(plots.draw_and_log_loss_curves, curves, best_epoch, loss,
                                                 tracking_uri, run_id))

    def wait(self) -> None:
        """Wait for the drawings sent and warn of each that failed (or is late)."""
        done, late = concurrent.futures.wait(self.pending, timeout=DRAWING_TIMEOUT)
        for future in done:
            problem = one_line(future.exception()) if future.exception() is not None else future.result()
            if problem is not None:
                print(f"warning: {problem}", file=sys.stderr)
        if late:
            print(f"warning: {len(late)} loss_curves.png not drawn within {DRAWING_TIMEOUT} s of the sweep's end",
                  file=sys.stderr)


class LocalLauncher(Launcher):
    """Runs a sweep's jobs as Hydra's basic launcher does, in this process (``n_jobs`` 1) or in
    ``n_jobs`` worker processes (see the module's docstring)."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.n_jobs = int(n_jobs)
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.config: DictConfig | None = None
        self.composer: Composer | None = None
        self.workers: processes.Workers | None = None
        self.drawer: processes.Drawer | None = None
        self.drawing: Drawing | None = None
        self.drawer_ready = False
        self.closed = False

    @property
    def concurrent_launches(self) -> bool:
        """Whether ``launch`` may be called from several threads at once (its worker processes)."""
        return self.workers is not None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        if self.n_jobs > 1:  # its worker processes start now, beside the sweep's checks
            self.workers = processes.Workers(self.n_jobs, hydra_context, processes.task_reference(task_function))
        elif processes.forks():  # one trial at a time here: its picture is drawn on the idle core
            self.drawer = processes.Drawer()
            self.drawing = Drawing(self.drawer)
        atexit.register(self.close)  # a sweeper that does not close it (Hydra's basic one)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        """Run the jobs of ``job_overrides`` (numbered from ``initial_job_idx``) and return how
        each ended, in order."""
        assert self.config is not None and self.hydra_context is not None
        processes.start_up_done(job_here=False)  # the sweep imported what its jobs use (they draw elsewhere)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        if self.composer is None:  # the first launch: ``beside`` no longer forks
            self.composer = Composer(self.hydra_context, self.config)
        configs = []
        log.info("Launching %d jobs locally", len(job_overrides))  # Hydra's words (hydra.verbose shows them)
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            cfg = self.composer.job_config(list(overrides))
            with open_dict(cfg):
                cfg.hydra.job.id = idx
                cfg.hydra.job.num = idx
            configs.append(cfg)
        if self.workers is not None:
            return [self.workers.run(cfg) for cfg in configs]
        self._warm_up()
        setup_globals()
        task = self.task_function
        if self.drawing is not None and "drawing" in inspect.signature(task).parameters:
            task = partial(task, drawing=self.drawing)
        returns = []
        for cfg in configs:
            returns.append(run_job(hydra_context=self.hydra_context, task_function=task, config=cfg,
                                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return returns

    def _warm_up(self) -> None:
        """Send the drawing process its first call (``processes.ready``: its imports, ~2.5 s of a
        core) once, when the space check's call ends (``beside``) or else as the first job starts:
        ready by the first picture, yet not slowing the start while the check and MLflow's import
        use both cores."""
        if self.drawer is not None and not self.drawer_ready:
            self.drawer_ready = True
            self.drawer.submit(processes.ready)

    def beside(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on another core (:mod:`sweeper.sweep.launching`): before any job, in a
        process forked for it where a fork is safe (``fn`` need not pickle); after, on the drawing
        process or an idle worker (``fn`` and ``args`` pickle). None where nothing can run it."""
        if self.composer is None:
            context = processes.fork_context()
            return None if context is None else processes.ForkedCall(context, fn, args, then=self._warm_up)
        executor = self.workers if self.workers is not None else self.drawer
        if executor is None or (self.workers is not None and self.workers.closed):
            return None
        self._warm_up()
        return executor.submit(fn, *args)

    def stop_jobs(self) -> None:
        """Ctrl-C: stop the jobs running in worker processes (an in-process job got it itself)."""
        if self.workers is not None:
            self.workers.stop_jobs()

    def close(self, finished: bool = True) -> None:
        """Stop the worker processes, and wait for the pictures still being drawn when the sweep
        ``finished`` (after a failure they are dropped: the store may be what failed)."""
        if self.closed:
            return
        self.closed = True
        atexit.unregister(self.close)
        if self.workers is not None:
            self.workers.close()
        if self.drawing is not None and finished:
            self.drawing.wait()
        if self.drawer is not None:
            self.drawer.close(kill=not finished)
