"""Trials as SLURM jobs: the logic of ``hydra/launcher=slurm``, whose class is
``hydra_plugins.sweeper_optuna.slurm_launcher.SweeperSlurmLauncher`` (Hydra instantiates plugins
only from that namespace). A batch is one job array, as under Hydra's submitit launcher, except:

- A job that SLURM ends without a result (``scancel``, a lost node, the out-of-memory killer)
  is that trial's failure (``JobLost``, retried once with the same parameters), not an
  exception that ends the batch and the sweep; the batch's other trials are told as they ended.
- Inside the job, SIGTERM (what ``scancel`` sends first) stops the trial like Ctrl-C (its MLflow
  run KILLED). submitit ignores SIGTERM to survive preemption, which would let a cancelled trial
  train on, and even finish, until SLURM's ``KillWait``.
- A sweep interrupted while its batch runs (Ctrl-C) cancels the batch's jobs, which would
  otherwise train on, outliving the sweeper, for trials it has already failed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from omegaconf import OmegaConf

from sweeper.errors import JobLost, failed_job
from sweeper import stop

RULE = "-" * 22  # around the job's traceback in submitit's FailedJobError


def stop_on_sigterm() -> None:
    """In the job: SIGTERM raises ``sweeper.stop.Interrupted`` (submitit's own handler ignores it)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.interrupt(
        f"its SLURM job got {signal.Signals(signum).name} (scancel, preemption or its time limit)"))


def submit(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """Submit the batch as one job array of ``launcher`` (a submitit ``SlurmLauncher``) and
    wait for every job; the plugin's own ``launch``, except that each job's result is read on
    its own (``job_return``)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = dict(launcher.params)
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    shared = set(OmegaConf.structured(BaseQueueConf).keys())  # the others are slurm_ keywords
    executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})

    # The plugin's logger: the sweep's console holds it back unless hydra.verbose (console.quiet_launcher).
    log = logging.getLogger(type(launcher).__module__)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    log.info("Submitit 'slurm' sweep output dir : %s", sweep_dir)
    job_params = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
    jobs = executor.map_array(launcher, *zip(*job_params))
    try:
        return [job_return(job, overrides) for job, overrides in zip(jobs, job_overrides)]
    except BaseException:
        # Ctrl-C, or anything else that ends the sweep while its jobs run: the sweeper fails
        # their trials, and the jobs, which do not die with it, would train on for nothing.
        subprocess.run(["scancel", *sorted({job.job_id.split("_")[0] for job in jobs})],
                       capture_output=True, check=False)
        raise


def job_return(job: Any, overrides: Sequence[str]) -> JobReturn:
    """What the SLURM job ``job`` returned; a failed JobReturn when it produced no result.

    No result and an end state other than COMPLETED (CANCELLED, NODE_FAIL, OUT_OF_MEMORY, ...):
    the job was killed, ``JobLost``. The job's Python raised outside the trial (it could not
    import the project on the node, say): a plain error with the job's last traceback line.
    """
    from submitit.core.utils import FailedJobError, UncompletedJobError

    job.wait()  # until its result file appears, or sacct says it ended
    try:
        if not job.paths.result_pickle.exists() and _end_state(job) != "COMPLETED":
            raise UncompletedJobError()  # job.results() would wait 15 s for a result file
        return job.results()[0]
    except FailedJobError as err:  # a subclass of UncompletedJobError: first
        # submitit's message: the traceback between two rules of dashes, then where the logs are.
        lines = [line.strip() for line in str(err).splitlines()]
        rules = [i for i, line in enumerate(lines) if line == RULE]
        trace = [line for line in lines[rules[0] + 1:rules[1]] if line] if len(rules) >= 2 else []
        last = trace[-1] if trace else "see its log"
        error: BaseException = RuntimeError(f"its SLURM job {job.job_id} failed: {last}")
    except UncompletedJobError:  # killed, or COMPLETED yet no result file came
        error = JobLost(f"its SLURM job {job.job_id} ended {_end_state(job)} without a result")
    ret = failed_job(error)
    ret.overrides = list(overrides)
    return ret


def _end_state(job: Any) -> str:
    return (job.state or "UNKNOWN").split()[0]  # sacct's "CANCELLED by 0" -> CANCELLED
