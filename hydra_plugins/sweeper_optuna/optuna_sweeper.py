"""The Hydra Sweeper plugin class; a thin shim over :mod:`sweeper.sweep.optuna_sweeper`.

Hydra instantiates plugin classes only from the ``hydra_plugins`` namespace, so this class lives
here and delegates everything to ``OptunaSweeperImpl``. Hydra imports every ``hydra_plugins``
module at start-up, even to print ``--help``, so the implementation (and with it Optuna and
SQLAlchemy, ~0.3 s) is imported only when Hydra instantiates the sweeper for a ``-m`` run.
"""

from typing import Any, List

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

import sweeper.sweep.settings  # noqa: F401  (registers hydra/sweeper/optuna_schema)


class OptunaSweeper(Sweeper):
    """Optuna search over a Hydra app, with pruning, resume and MLflow parent/child runs."""

    def __init__(self, **settings: Any) -> None:
        from sweeper.sweep.optuna_sweeper import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(**settings)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        return self.sweeper.sweep(arguments)
