"""How a running job reaches its Optuna trial: ``current()`` and ``TrialLink.report``.

The sweeper passes a trial's identity to the job only as Hydra overrides
(``++hydra.job.env_set.SWEEPER_*=...``, see :func:`overrides_for`), never as a Python object, so the
same job code prunes in-process, under the joblib launcher, or on another machine that shares the
storage. The job reads the identity back from its own ``HydraConfig`` (not from ``os.environ``:
Hydra sets ``env_set`` variables in the process and never unsets them, so a plain run after an
in-process multirun job would otherwise think it is still a trial). ``env_set`` also exports the
variables to any process the job starts.

The identity carries the pruner that may stop the trial (``hydra.sweeper.pruner`` and its
kwargs, :class:`sweeper.sweep.settings.Pruner`), built once per process; everything else about
the trial (the study's directions, its peers' values) is read from the storage, the single
source of truth.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
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
    """The Hydra overrides that tell one job which Optuna trial it is, and the pruner that may
    stop it (``Pruner.text()``) (``IDENTITY_KEYS``)."""
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

    Every pruner takes the same path, what ``trial.report`` and ``trial.should_prune`` do in
    Optuna's own examples, through Optuna's public storage and pruner API: the epoch's value is
    the trial's intermediate value (``BaseStorage.set_trial_intermediate_value``), then the
    trial's pruner decides (``BasePruner.prune(study, frozen_trial)``). On the default local
    storage, a journal file, both take 0.6–1 ms an epoch with a median pruner (most of it the
    write's sync to disk); PostgreSQL, shared by workers on many machines, ~6 ms.
    """

    storage_url: str
    study_name: str
    trial_id: int
    trial_number: int
    parent_run_id: str | None
    pruner: str = NO_PRUNER  # Pruner.text()
    _study: Any = field(default=None, init=False, repr=False)
    _storage: Any = field(default=None, init=False, repr=False)

    def _connect(self) -> Any:
        """The trial's study, loaded with its pruner (once per process and pruner)."""
        if self._study is None:
            self._study, self._storage = _job_study(self.storage_url, self.study_name, self.pruner)
        return self._study

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
            study = self._connect()
            if len(study.directions) > 1 or not math.isfinite(value):
                return False
            self._storage.set_trial_intermediate_value(self.trial_id, int(epoch), float(value))
            return bool(study.pruner.prune(study, self._storage.get_trial(self.trial_id)))


@functools.lru_cache(maxsize=4)
def _job_study(storage_url: str, study_name: str, pruner: str) -> tuple[Any, Any]:
    """(study, its storage) as the jobs of one process see them, with the trial's pruner
    (``pruner``: ``Pruner.text()``), built once.

    Kept for the process, so the jobs after the first (in-process, or in one joblib worker)
    reuse the storage's view of the finished trials instead of reading them all again.
    """
    import optuna

    from sweeper.sweep.settings import Pruner
    from sweeper.sweep.storage import open_storage

    storage = open_storage(storage_url)
    study = optuna.load_study(
        study_name=study_name,
        storage=storage,
        # The sweeper samples; the job never does, so the cheapest sampler will do.
        sampler=optuna.samplers.RandomSampler(),
        pruner=Pruner.from_text(pruner).build(),
    )
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
    return TrialLink(
        storage_url=str(env[STORAGE]),
        study_name=str(env[STUDY]),
        trial_id=int(env[TRIAL_ID]),
        trial_number=int(env[TRIAL_NUMBER]),
        parent_run_id=str(env[PARENT_RUN_ID]) or None,
        pruner=str(env.get(PRUNER) or NO_PRUNER),
    )
