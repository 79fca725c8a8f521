"""The launcher of ``hydra/launcher=local`` (the default); the logic is :mod:`sweeper.launcher.local`.

Hydra instantiates plugin classes only from the ``hydra_plugins`` namespace, so the class is
named here. Hydra imports every ``hydra_plugins`` module at start-up, even to print ``--help``:
``sweeper.launcher.local`` imports nothing heavier than Hydra itself.
"""

from sweeper.launcher.local import LocalLauncher as _LocalLauncher


class LocalLauncher(_LocalLauncher):
    """Hydra's basic launcher with cached job configs, worker processes and a drawing process."""
