"""How a running job reaches its Optuna trial: ``current()`` and ``TrialLink.report``.

The sweeper passes a trial's identity (with the pruner that may stop it, ``Pruner.text()``) to
the job only as Hydra overrides (``++hydra.job.env_set.SWEEPER_*=...``, :func:`overrides_for`),
so the same job code prunes in-process, under joblib, or on another machine sharing the storage.
The job reads it back from its own ``HydraConfig``, not ``os.environ``: Hydra never unsets
``env_set`` variables, so a plain run after an in-process multirun job would think it a trial.
Everything else about the trial is read from the storage, the single source of truth.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

from sweeper import stop
from sweeper.overrides import quote

STORAGE = "SWEEPER_STORAGE"
STUDY = "SWEEPER_STUDY"
TRIAL_ID = "SWEEPER_TRIAL_ID"
TRIAL_NUMBER = "SWEEPER_TRIAL_NUMBER"
PARENT_RUN_ID = "SWEEPER_PARENT_RUN_ID"
PRUNER = "SWEEPER_PRUNER"

#: A trial's pruner when none is given (``sweeper.sweep.settings.Pruner.text()``): never pruned.
NO_PRUNER = json.dumps({"kwargs": {}, "name": "none"}, sort_keys=True)

#: The config keys of those overrides, one per variable.
IDENTITY_KEYS = tuple(f"hydra.job.env_set.{name}"
                      for name in (STORAGE, STUDY, TRIAL_ID, TRIAL_NUMBER, PARENT_RUN_ID, PRUNER))


def overrides_for(storage_url: str, study_name: str, trial_id: int, trial_number: int, parent_run_id: str | None,
                  pruner: str = NO_PRUNER) -> list[str]:
    """The Hydra overrides (``IDENTITY_KEYS``) that tell one job which Optuna trial it is, and
    the pruner that may stop it (``Pruner.text()``)."""
    values = (storage_url, study_name, str(trial_id), str(trial_number), parent_run_id or "", pruner)
    return [f"++{key}={quote(value)}" for key, value in zip(IDENTITY_KEYS, values)]


@dataclass(frozen=True)
class Identity:
    """What each job of a sweep is told besides its own trial: the storage as the jobs reach it
    (no password: ``store.without_password``), the study, the MLflow parent run and the
    pruner (``Pruner.text()``)."""

    storage_url: str
    study_name: str
    parent_run_id: str | None
    pruner: str = NO_PRUNER

    def overrides(self, trial_id: int, trial_number: int) -> list[str]:
        """The overrides of the job of trial ``trial_number`` (the storage's ``trial_id``)."""
        return overrides_for(self.storage_url, self.study_name, trial_id, trial_number, self.parent_run_id,
                             self.pruner)


@dataclass
class TrialLink:
    """The Optuna trial the current job runs as, on the shared storage.

    What ``trial.report`` and ``trial.should_prune`` do in Optuna's examples, through its public
    API: the epoch's value is the trial's intermediate value
    (``BaseStorage.set_trial_intermediate_value``), then its pruner decides
    (``BasePruner.prune(study, frozen_trial)``); docs/scale-out.md gives the cost an epoch.
    """

    storage_url: str
    study_name: str
    trial_id: int
    trial_number: int
    parent_run_id: str | None
    pruner: str = NO_PRUNER  # Pruner.text()

    def report(self, epoch: int, value: float) -> bool:
        """Report the objective's value after ``epoch``; return True if the trial should stop.

        Multi-objective studies never prune (Optuna cannot), and a NaN/inf value is not reported:
        the job ends such a trial as FAIL itself. A storage that stopped working raises
        StoreError naming ``hydra.sweeper.storage``; a job asked to stop (``sweeper.stop.request``)
        raises ``sweeper.stop.Interrupted``.
        """
        from sweeper.sweep.storage import storage_calls

        stop.raise_if_requested()
        with storage_calls(self.storage_url, "reporting the trial's values"):
            study, storage = _job_study(self.storage_url, self.study_name, self.pruner)
            if len(study.directions) > 1 or not math.isfinite(value):
                return False
            storage.set_trial_intermediate_value(self.trial_id, int(epoch), float(value))
            return bool(study.pruner.prune(study, storage.get_trial(self.trial_id)))


@functools.lru_cache(maxsize=4)
def _job_study(storage_url: str, study_name: str, pruner: str) -> tuple[Any, Any]:
    """(study, its storage) with the trial's pruner (``Pruner.text()``), built once per process:
    later jobs (in-process, or in one joblib worker) reuse the storage's view of the finished trials."""
    import optuna

    from sweeper.sweep.settings import Pruner
    from sweeper.sweep.storage import open_storage

    storage = open_storage(storage_url)
    # The sweeper samples; the job never does, so the cheapest sampler will do.
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(),
                              pruner=Pruner.from_text(pruner).build())
    return study, storage


def current() -> TrialLink | None:
    """The trial this Hydra job runs as, or None outside an Optuna sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    env = hydra_cfg.job.env_set
    if not env or TRIAL_ID not in env:
        return None
    return TrialLink(str(env[STORAGE]), str(env[STUDY]), int(env[TRIAL_ID]), int(env[TRIAL_NUMBER]),
                     str(env[PARENT_RUN_ID]) or None, str(env.get(PRUNER) or NO_PRUNER))
