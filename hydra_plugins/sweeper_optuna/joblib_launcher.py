"""``hydra/launcher=joblib``: Hydra's joblib launcher (``pip install -e '.[joblib]'``) saying what
the sweeper may do with it (``sweeper.sweep.launching``): its loky pool takes launches from
several threads at once, so the sweeper keeps ``n_jobs`` trials running without a batch barrier.

Its config replaces Hydra's ``hydra/launcher/joblib`` in the ConfigStore (same keys, this
class as the target); Hydra's is stored first, here, so the order of Hydra's plugin scan does
not matter. Without the extra this module defines nothing, and the scan passes over it quietly.
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

try:
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher as HydraJoblibLauncher
except ImportError:  # the [joblib] extra is not installed
    HydraJoblibLauncher = None

if HydraJoblibLauncher is not None:

    class JoblibLauncher(HydraJoblibLauncher):
        """Hydra's joblib launcher, each trial a job of its loky processes."""

        concurrent_launches = True

    @dataclass
    class JoblibLauncherConf(JobLibLauncherConf):
        """Hydra's joblib launcher's keys (``n_jobs``, ``backend``, ...)."""

        _target_: str = "hydra_plugins.sweeper_optuna.joblib_launcher.JoblibLauncher"

    ConfigStore.instance().store(group="hydra/launcher", name="joblib", node=JoblibLauncherConf, provider="sweeper")
