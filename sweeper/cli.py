"""The command-line boundary: whatever a user gets wrong comes back as one line on stderr.

Hydra prints its own composition errors over several lines (key, reference type, object type,
a hint about HYDRA_FULL_ERROR). ``run_main`` asks Hydra to re-raise instead and condenses every
error into ``error: <key>: <what is wrong>; allowed: ...`` with exit status 2. Setting
``HYDRA_FULL_ERROR=1`` still gives the full traceback, as Hydra users expect.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from typing import Callable

FULL_ERROR = "HYDRA_FULL_ERROR"


# None until run_main starts: then HYDRA_FULL_ERROR is ours, and this keeps what the user set.
_traceback_requested: bool | None = None


def run_main(main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; errors become one line and exit status 2 (130 on Ctrl-C)."""
    global _traceback_requested
    _traceback_requested = os.environ.get(FULL_ERROR) == "1"
    os.environ[FULL_ERROR] = "1"  # Hydra re-raises instead of printing its multi-line report
    try:
        sys.argv[1:] = without_passwords(sys.argv[1:])
        main()
    except (Exception, KeyboardInterrupt) as error:
        exit_for(error)


#: Overrides whose value may be a URL with a password, and how the argument looks.
_URL_OVERRIDE = re.compile(r"^(\+{0,2})(mlflow\.tracking_uri|hydra\.sweeper\.storage)=(['\"]?)(.*)\3$")


def without_passwords(args: list[str]) -> list[str]:
    """``args`` with the password of a ``mlflow.tracking_uri=`` or ``hydra.sweeper.storage=``
    URL moved to the environment (``sweeper.tracking.store.password_to_environment``) before
    Hydra sees it: no Hydra output file, "Launching" line, job override or error line can then
    hold it."""
    from sweeper.tracking.store import password_to_environment

    kept = []
    for arg in args:
        match = _URL_OVERRIDE.match(arg)
        if match:
            plus, key, quote, url = match.groups()
            arg = f"{plus}{key}={quote}{password_to_environment(url, key)}{quote}"
        kept.append(arg)
    return kept


def exit_for(error: BaseException) -> None:
    """Print ``error`` as one line and exit (2; 130 for Ctrl-C), or re-raise it when the user set
    HYDRA_FULL_ERROR=1. A single run's task calls this itself, before Hydra adds its own
    "Error executing job" line on the way out."""
    requested = _traceback_requested
    if requested is None:
        requested = os.environ.get(FULL_ERROR) == "1"
    if requested:
        raise error
    if isinstance(error, KeyboardInterrupt):
        print("interrupted: the running MLflow run was ended as KILLED", file=sys.stderr)
        sys.exit(130)
    print(f"error: {one_line(error)}", file=sys.stderr)
    sys.exit(2)


def one_line(error: BaseException) -> str:
    """A single line naming the config key, group or file at fault, for any error we surface."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    from sweeper.errors import SweeperError

    if isinstance(error, SweeperError):
        return _first_line(error)
    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, option = error.missing_cfg_file.rpartition("/")
        if error.options:
            return f"{group}: unknown option '{option}'; allowed: {', '.join(error.options)}"
        if error.missing_cfg_file in _PLUGIN_CONFIGS:  # a config of ours built on an optional plugin's
            choice, extra = _PLUGIN_CONFIGS[error.missing_cfg_file]
            return f"{choice} needs the [{extra}] extra: pip install -e '.[{extra}]'"
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
        return f"{key}: {_first_line(cause)}"
    return _first_line(error)


#: Configs of Hydra plugins that ship as extras, and the choice of ours that builds on each.
_PLUGIN_CONFIGS = {"hydra/launcher/submitit_slurm": ("hydra/launcher=slurm", "slurm")}


def user_keys(object_type: object) -> list[str]:
    """The keys a user may set in a schema dataclass (fields marked ``internal`` left out)."""
    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return [field.name for field in dataclasses.fields(object_type) if not field.metadata.get("internal")]
    return []


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def run_command(main: Callable[[], object]) -> None:
    """``run_main`` as a whole process (``python -m sweeper``): the command's end is the
    process's, its garbage collector off while it starts (``sweeper.launcher.processes.start_up``)."""
    from sweeper.launcher.processes import start_up

    with start_up():
        run_main(main)
