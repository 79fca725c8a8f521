"""``python -m sweeper [OVERRIDES...]``: one tracked training run; ``-m`` for an Optuna sweep."""

from sweeper.app import main
from sweeper.cli import run_command

if __name__ == "__main__":
    run_command(main)
