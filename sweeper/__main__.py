"""``python -m sweeper [OVERRIDES...]``: one tracked training run; ``-m`` for an Optuna sweep."""

from sweeper.app import main

if __name__ == "__main__":
    main()
