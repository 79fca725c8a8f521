"""What the sweeper asks of its launcher beyond Hydra's ``Launcher.launch``.

The sweeper never builds, replaces or type-checks its launcher: each extra is asked for by name
and used when present (docs/architecture.md's table); a launcher without them (Hydra's basic
one, SLURM, any other) runs the same sweep in batches. ``hydra/launcher=local`` offers all four.
"""

from __future__ import annotations

from typing import Any, Callable


def concurrent_launches(launcher: Any) -> bool:
    """Whether ``launcher.launch`` may be called from several threads at once, each call running
    its jobs apart: the sweeper then keeps ``n_jobs`` trials running (no batch barrier)."""
    return bool(getattr(launcher, "concurrent_launches", False))


def beside(launcher: Any) -> Callable[..., Any] | None:
    """The launcher's ``beside(fn, *args) -> call | None``: ``fn(*args)`` run on another core
    while the sweeper goes on; ``call.result()`` waits for it, raising its error, or
    ``ChildProcessError`` if its process died. None: the sweeper calls ``fn`` itself."""
    return getattr(launcher, "beside", None)


def stop_jobs(launcher: Any) -> None:
    """Ctrl-C: ask the launcher to stop the jobs it runs in other processes, if it can."""
    getattr(launcher, "stop_jobs", lambda: None)()


def close(launcher: Any, finished: bool) -> None:
    """Tell the launcher the sweep is over (``finished``) or failed, if it listens: it stops its processes."""
    getattr(launcher, "close", lambda finished: None)(finished)
