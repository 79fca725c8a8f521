"""The launcher of ``hydra/launcher=slurm``; a thin shim over :mod:`sweeper.launcher.slurm`.

It is Hydra's submitit SLURM launcher (``pip install -e '.[slurm]'``), except that a job SLURM
kills is its trial's failure rather than the whole sweep's, and that a trial stops at the
SIGTERM of ``scancel``. Without the extra this module defines nothing, and Hydra's plugin scan
passes over it quietly.
"""

from typing import Any, Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
except ImportError:  # the [slurm] extra is not installed
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:

    class SlurmLauncher(SubmititSlurmLauncher):
        """Each trial of a batch a task of one SLURM job array."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
            from sweeper.launcher.slurm import submit

            return submit(self, job_overrides, initial_job_idx)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            """Runs inside the SLURM job (submitit unpickles this launcher there)."""
            from sweeper.launcher.slurm import stop_on_sigterm

            stop_on_sigterm()
            return super().__call__(*args, **kwargs)
