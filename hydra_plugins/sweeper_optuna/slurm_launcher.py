"""The launcher of ``hydra/launcher=slurm``; a thin shim over :mod:`sweeper.launcher.slurm`.

It is Hydra's submitit SLURM launcher (``pip install -e '.[slurm]'``), except that a job SLURM
kills is its trial's failure rather than the whole sweep's, and that a trial stops at the
SIGTERM of ``scancel``. Without the extra this module defines nothing, and Hydra's plugin scan
passes over it quietly.
"""

from typing import Any, Sequence

# The plugin's module, not its class: Hydra's plugin scan lists every launcher class a module
# holds, so an imported base class would be listed again by `--info plugins`.
try:
    import hydra_plugins.hydra_submitit_launcher.submitit_launcher as submitit_launcher
except ImportError:  # the [slurm] extra is not installed
    submitit_launcher = None

if submitit_launcher is not None:

    class SweeperSlurmLauncher(submitit_launcher.SlurmLauncher):
        """Each trial of a batch a task of one SLURM job array."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
            from sweeper.launcher.slurm import submit

            return submit(self, job_overrides, initial_job_idx)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            """Runs inside the SLURM job (submitit unpickles this launcher there)."""
            from sweeper.launcher.slurm import stop_on_sigterm

            stop_on_sigterm()
            return super().__call__(*args, **kwargs)
