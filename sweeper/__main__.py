"""``python -m sweeper [OVERRIDES...]``: one tracked training run; ``-m`` for an Optuna sweep."""

import sys

from sweeper.app import main
from sweeper.cli import run_command


def command() -> None:
    """The ``sweeper`` console script: ``python -m sweeper`` under its own name (so Hydra's
    ``sweeper -sc install=bash`` completes it, and ``sweeper --help`` says ``sweeper``)."""
    if {"--help", "-h"} & set(sys.argv[1:]) and getattr(sys.modules["__main__"], "__spec__", None) is None:
        sys.argv.append("hydra.help.app_name=sweeper")  # run as the console script, not python -m sweeper
    run_command(main)


if __name__ == "__main__":
    command()
