"""The command-line boundary: whatever a user gets wrong comes back as one line on stderr
(``sweeper.errors.exit_for``), and a password in a URL leaves the command line and the config."""
from __future__ import annotations

import re
import sys
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sweeper import errors
from sweeper.launcher.processes import start_up


def run_main(main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; errors become one line and exit status 2 (130 on Ctrl-C)."""
    errors.take_over_full_error()  # Hydra re-raises instead of printing its multi-line report
    try:
        sys.argv[1:] = without_passwords(sys.argv[1:])
        main()
    except (Exception, KeyboardInterrupt) as error:
        errors.exit_for(error)


#: Config keys that may hold a URL with a password: the run's store and the sweep's storage.
URL_KEYS = ("mlflow.tracking_uri", "hydra.sweeper.storage")
#: An override of one of them, and how the argument looks.
_URL_OVERRIDE = re.compile(rf"^(\+{{0,2}})({'|'.join(map(re.escape, URL_KEYS))})=(['\"]?)(.*)\3$")


def without_passwords(args: list[str]) -> list[str]:
    """``args`` with the password of a ``mlflow.tracking_uri=`` or ``hydra.sweeper.storage=``
    URL moved to the environment (``sweeper.tracking.store.without_password``) before
    Hydra sees it: no Hydra output file, "Launching" line, job override or error line can then
    hold it."""
    from sweeper.tracking.store import without_password

    kept = []
    for arg in args:
        match = _URL_OVERRIDE.match(arg)
        if match:
            plus, key, quote, url = match.groups()
            arg = f"{plus}{key}={quote}{without_password(url, key)}{quote}"
        kept.append(arg)
    return kept


def config_without_passwords(config: DictConfig, recomposed: bool) -> None:
    """Move the password of a URL a config file gave ``config`` (`URL_KEYS`) to the environment
    (``sweeper.tracking.store.without_password``), leaving the URL without it in ``config``.
    ``recomposed``: a sweep's jobs are composed again from the config files, so the clean URL is
    also added to the overrides every job is composed with (``hydra.overrides.hydra``)."""
    from sweeper.tracking.store import without_password

    for key in URL_KEYS:
        value = OmegaConf.select(config, key, default=None)
        if not isinstance(value, str) or (safe := without_password(value, key)) == value:
            continue
        with read_write(config), open_dict(config):
            OmegaConf.update(config, key, safe)
            if recomposed:
                quoted = safe.replace("'", "\\'")
                config.hydra.overrides.hydra.append(f"{key}='{quoted}'")


class PasswordsOut(Callback):
    """A Hydra callback (``hydra.callbacks.passwords`` in ``conf/config.yaml``): a password a
    config file put in a URL leaves the config before Hydra writes it to ``.hydra/*.yaml`` or
    ``multirun.yaml`` (`config_without_passwords`); the command line's is gone already
    (`without_passwords`)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        config_without_passwords(config, recomposed=False)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        config_without_passwords(config, recomposed=True)


def run_command(main: Callable[[], object]) -> None:
    """``run_main`` as a whole process (``python -m sweeper``): the command's end is the
    process's, its garbage collector off while it starts (``sweeper.launcher.processes.start_up``)."""
    with start_up():
        run_main(main)
