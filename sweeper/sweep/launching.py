"""What the sweeper asks of its launcher beyond Hydra's ``Launcher.launch``.

The sweeper runs its trials through whatever launcher ``hydra/launcher`` selects (Hydra's
contract: ``launch(job_overrides, initial_job_idx) -> [JobReturn]``), and never builds,
replaces or type-checks it. A launcher may offer more, each asked for by name and used when
present; every launcher without them (Hydra's basic one, SLURM, any other) runs the same sweep,
in batches:

``concurrent_launches: bool``
    ``launch`` may be called from several threads at once, each call running its jobs apart
    (``hydra/launcher=local`` with ``n_jobs`` > 1, ``hydra/launcher=joblib``): the sweeper then
    keeps ``n_jobs`` trials running, asking the next as soon as one ends (no batch barrier).
``beside(fn, *args) -> call | None``
    run ``fn(*args)`` on another core while the sweeper goes on (the space check as the sweep
    starts, the parent run's plots as it ends); ``call.result()`` waits for it, raising its
    error, or ``ChildProcessError`` if its process died. None: the sweeper calls ``fn`` itself.
``stop_jobs()``
    Ctrl-C: stop the jobs it runs in other processes (their trials end interrupted).
``close(finished: bool)``
    the sweep is over (``finished``) or failed: stop its processes.

``hydra/launcher=local`` (``sweeper.launcher.local``) offers all four.
"""

from __future__ import annotations

from typing import Any, Callable


def concurrent_launches(launcher: Any) -> bool:
    """Whether ``launcher.launch`` may be called from several threads at once."""
    return bool(getattr(launcher, "concurrent_launches", False))


def beside(launcher: Any) -> Callable[..., Any] | None:
    """The launcher's ``beside``, or None."""
    return getattr(launcher, "beside", None)


def stop_jobs(launcher: Any) -> None:
    """Ask the launcher to stop its running jobs, if it can."""
    stop = getattr(launcher, "stop_jobs", None)
    if stop is not None:
        stop()


def close(launcher: Any, finished: bool) -> None:
    """Tell the launcher the sweep is over, if it listens."""
    closing = getattr(launcher, "close", None)
    if closing is not None:
        closing(finished)
