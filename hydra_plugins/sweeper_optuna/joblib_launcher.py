"""``hydra/launcher=joblib``: Hydra's joblib launcher (``pip install -e '.[joblib]'``) saying what
the sweeper may do with it (``sweeper.sweep.launching``): its loky pool takes launches from
several threads at once, so the sweeper keeps ``n_jobs`` trials running without a batch barrier.

Its config replaces Hydra's ``hydra/launcher/joblib`` in the ConfigStore (same keys, this
class as the target); Hydra's is stored first, here, so the order of Hydra's plugin scan does
not matter. Without the extra this module defines nothing, and the scan passes over it quietly.
"""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

# The plugin's modules, not its class: Hydra's plugin scan lists every launcher class a module
# holds, so an imported base class would be listed again by `--info plugins`.
try:
    import hydra_plugins.hydra_joblib_launcher.config as joblib_config
    import hydra_plugins.hydra_joblib_launcher.joblib_launcher as joblib_launcher
except ImportError:  # the [joblib] extra is not installed
    joblib_launcher = None

if joblib_launcher is not None:

    class SweeperJoblibLauncher(joblib_launcher.JoblibLauncher):
        """Hydra's joblib launcher, each trial a job of its loky processes."""

        concurrent_launches = True

    @dataclass
    class JoblibLauncherConf(joblib_config.JobLibLauncherConf):
        """Hydra's joblib launcher's keys (``n_jobs``, ``backend``, ...)."""

        _target_: str = "hydra_plugins.sweeper_optuna.joblib_launcher.SweeperJoblibLauncher"

    ConfigStore.instance().store(group="hydra/launcher", name="joblib", node=JoblibLauncherConf, provider="sweeper")
