"""How a running job is asked to stop: a signal's handler (the launcher's) raises
``Interrupted``, and in case it landed where Python drops it, the job's next report raises it
again (:func:`raise_if_requested`). The job's MLflow run then ends KILLED and its trial FAIL."""

from __future__ import annotations


class Interrupted(KeyboardInterrupt):
    """The job was asked to stop (Ctrl-C in a worker, a SLURM job's SIGTERM): its trial ends as
    an interrupted one."""


_reason: str | None = None


def request(reason: str) -> None:
    """Make the current job's next report raise ``Interrupted(reason)`` (an exception raised
    inside a garbage-collection callback is printed and dropped)."""
    global _reason
    _reason = reason


def interrupt(reason: str) -> None:
    """From a signal handler: raise ``Interrupted(reason)`` now and at the next report."""
    request(reason)
    raise Interrupted(reason)


def raise_if_requested() -> None:
    """Raise ``Interrupted`` if a stop was requested (``request``)."""
    if _reason is not None:
        raise Interrupted(_reason)
