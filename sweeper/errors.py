"""The errors a user sees as one line: the message names the key, column or file at fault.

Hydra prints its own composition errors over several lines; a command (``sweeper.cli.run_main``)
asks Hydra to re-raise instead, and :func:`exit_for` condenses every error into ``error: <key>:
<what is wrong>; allowed: ...`` with exit status 2. ``HYDRA_FULL_ERROR=1`` still gives the full
traceback, as Hydra users expect.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import pickle
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any, NoReturn

FULL_ERROR = "HYDRA_FULL_ERROR"

# None until a command takes HYDRA_FULL_ERROR over: then this keeps what the user set.
_traceback_requested: bool | None = None


def take_over_full_error() -> None:
    """Set HYDRA_FULL_ERROR=1 (Hydra then re-raises errors instead of printing its report),
    keeping whether the user had asked for tracebacks (:func:`exit_for` gives them then)."""
    global _traceback_requested
    _traceback_requested = os.environ.get(FULL_ERROR) == "1"
    os.environ[FULL_ERROR] = "1"


class SweeperError(Exception):
    """Base of every error reported to the user as one line without a traceback."""


class ConfigError(SweeperError, ValueError):
    """A config key is unknown, mistyped or out of range."""


class DataError(SweeperError, ValueError):
    """A CSV file, column or value cannot be used."""


class StoreError(SweeperError):
    """The MLflow tracking store or the Optuna storage stopped working: not the trial's fault.

    The message names ``mlflow.tracking_uri`` or ``hydra.sweeper.storage`` (password hidden). A
    sweep stops at the first one (every later trial would fail the same way) and resumes when
    the command is run again.
    """


class JobLost(SweeperError):
    """A trial's job ended without a result: its process was killed (``scancel``, a lost node,
    the out-of-memory killer) before it could say how the trial went. Not the trial's fault: a
    launcher returns it as the job's failure, and the sweeper fails the trial and retries it
    once with the same parameters, as it does for a trial whose sweeper died."""


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception ``error`` was raised from (``__cause__``, else ``__context__``):
    MLflow and Optuna wrap a database's own words ("unable to open database file") in theirs."""
    seen = {id(error)}
    while (inner := error.__cause__ or error.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        error = inner
    return error


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser for ``sweeper.rerun``, ``sweeper.report`` and ``sweeper.predict``: a
    wrong option or argument is one line, ``error: <what argparse says>``, exit status 2
    (argparse's own prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def shown(value: object) -> str:
    """``repr(value)`` for an error line, cut to 60 characters with ``…`` at the end: a cell of
    a CSV may be megabytes long, and the line must stay one line a terminal can show."""
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, for reasons and messages that must stay on one line."""
    return f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__


def first_line(error: BaseException) -> str:
    """The first non-blank line of ``error``'s message (its type's name when it has none)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def sendable(error: Exception) -> Exception:
    """``error`` as another process can receive it through a pipe: itself when it comes out of
    pickle as it went in, else a RuntimeError holding its line (an exception whose ``__init__``
    takes other arguments than its message pickles, but does not unpickle)."""
    try:
        if type(pickle.loads(pickle.dumps(error))) is type(error):
            return error
    except Exception:
        pass
    return RuntimeError(one_line(error))


def exit_for(error: BaseException) -> None:
    """Print ``error`` as one line and exit (2; 130 for Ctrl-C), or re-raise it when the user set
    HYDRA_FULL_ERROR=1. A single run's task calls this itself, before Hydra adds its own
    "Error executing job" line on the way out."""
    requested = os.environ.get(FULL_ERROR) == "1" if _traceback_requested is None else _traceback_requested
    if requested:
        raise error
    if isinstance(error, KeyboardInterrupt):
        print("interrupted: the running MLflow run was ended as KILLED", file=sys.stderr)
        sys.exit(130)
    remove_refused_run_dir()
    print(f"error: {user_line(error)}", file=sys.stderr)
    sys.exit(2)


def remove_refused_run_dir() -> None:
    """Remove the output folder Hydra made for a refused single run when it holds only what Hydra
    wrote before the task started (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``
    and ``<job>.log``), then its parents below the working directory that this left empty
    (``outputs/DATE``). A folder holding anything more is left as it is."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return
    hydra = HydraConfig.get()
    folder, cwd = Path(hydra.runtime.output_dir), Path(hydra.runtime.cwd)
    ours = {folder / f"{hydra.job.name}.log"}
    if hydra.output_subdir:
        subdir = folder / hydra.output_subdir
        ours |= {subdir} | {subdir / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")}
    if folder == cwd or not folder.is_dir() or not set(folder.rglob("*")) <= ours:
        return
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:
        if cwd not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def user_line(error: BaseException) -> str:
    """A single line naming the config key, group or file at fault, for any error we surface."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    if isinstance(error, SweeperError):
        return first_line(error)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        if error.missing_cfg_file in _PLUGIN_CONFIGS:  # an optional plugin's config, or ours built on one
            choice, extra = _PLUGIN_CONFIGS[error.missing_cfg_file]
            return f"{choice} needs the [{extra}] extra: pip install -e '.[{extra}]'"
        if error.options:
            return f"{group}: unknown option '{option}'; allowed: {', '.join(error.options)}"
        return f"config '{error.missing_cfg_file}' not found"
    if isinstance(error, OverrideParseException):
        detail = [line for line in str(error).splitlines()
                  if line.strip() and not line.startswith(("Error parsing", "See https"))]
        return f"cannot parse override '{error.override}': {detail[0] if detail else 'bad syntax'}"
    cause = error.__cause__ or error
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        key = cause.full_key
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            allowed = user_keys(getattr(cause, "object_type", None))
            overridden = re.search(r"Could not override '([^']+)'", str(error))
            if not allowed and overridden and key.startswith(overridden[1] + "."):
                # e.g. hydra.sweeper.pruner_kwargs={n_warmup_steps:10}: a free-form dict of the
                # config takes new keys only one at a time, each with a leading +.
                return (f"{overridden[1]}: '{key[len(overridden[1]) + 1:]}' is not in it yet; "
                        f"add each new key on its own: +{key}=VALUE")
            return f"{key}: unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
        return f"{key}: {first_line(cause)}"
    return first_line(error)


#: Configs of Hydra plugins that ship as extras, and the choice of ours that builds on each.
_PLUGIN_CONFIGS = {"hydra/launcher/submitit_slurm": ("hydra/launcher=slurm", "slurm"),
                   "hydra/launcher/joblib": ("hydra/launcher=joblib", "joblib")}


def user_keys(object_type: object) -> list[str]:
    """The keys a user may set in a schema dataclass (fields marked ``internal`` left out)."""
    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return [field.name for field in dataclasses.fields(object_type) if not field.metadata.get("internal")]
    return []


# -- a Hydra job's outcome, through JobReturn's public properties ------------------------------

_stderr_swap = threading.Lock()


def failed_job(error: BaseException) -> Any:
    """A Hydra ``JobReturn`` of a job that ended with ``error``."""
    from hydra.core.utils import JobReturn, JobStatus

    ret = JobReturn()
    ret.status = JobStatus.FAILED
    ret.return_value = error
    return ret


def job_error(ret: Any) -> BaseException | None:
    """The error a failed ``JobReturn`` holds; None for a completed one. Read through Hydra's
    public ``return_value``, which raises it, after writing "Error executing job with
    overrides" to stderr: a line the sweep's terminal does not show (its own line says it)."""
    from hydra.core.utils import JobStatus

    if ret.status == JobStatus.COMPLETED:
        return None
    with _stderr_swap, contextlib.redirect_stderr(io.StringIO()):
        try:
            ret.return_value
        except BaseException as error:  # what the job raised, whatever it was
            return error
    return None
