"""``hydra/launcher=local`` (the default in ``conf/config.yaml``): the launcher class and its config.

Hydra instantiates plugin classes only from the ``hydra_plugins`` namespace, so the class is
named here (the logic is :mod:`sweeper.launcher.local`), and its config is stored in Hydra's
ConfigStore as the plugins of Hydra's own do, so any Hydra app can select it. Hydra imports
every ``hydra_plugins`` module at start-up, even to print ``--help``: ``sweeper.launcher.local``
imports nothing heavier than Hydra itself.
"""

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

# The module, not its class: Hydra's plugin scan lists every launcher class a module holds.
from sweeper.launcher import local


class SweeperLocalLauncher(local.LocalLauncher):
    """Hydra's basic launcher with cached job configs, worker processes and a drawing process."""


@dataclass
class LocalLauncherConf:
    """``hydra.launcher`` of ``hydra/launcher=local``."""

    _target_: str = "hydra_plugins.sweeper_optuna.local_launcher.SweeperLocalLauncher"
    # 1: jobs in this process (each loss_curves.png drawn in a drawing process meanwhile);
    # N > 1: N worker processes, the next trial starting as one ends. Follows hydra.sweeper.n_jobs.
    n_jobs: Any = "${oc.select:hydra.sweeper.n_jobs,1}"


ConfigStore.instance().store(group="hydra/launcher", name="local", node=LocalLauncherConf, provider="sweeper")
