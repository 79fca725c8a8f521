"""``python -m sweeper [OVERRIDES...]``: one tracked training run; ``-m`` for an Optuna sweep."""

from sweeper.app import main
from sweeper.cli import run_command


def command() -> None:
    """The ``sweeper`` console script: ``python -m sweeper`` under its own name (so Hydra's
    ``sweeper -sc install=bash`` completes it)."""
    run_command(main)


if __name__ == "__main__":
    command()
