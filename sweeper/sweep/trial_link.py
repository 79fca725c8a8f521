"""How a running job reaches its Optuna trial: ``current()`` and ``TrialLink.report``.

The sweeper passes a trial's identity to the job only as Hydra overrides
(``++hydra.job.env_set.SWEEPER_*=...``, see :func:`overrides_for`), never as a Python object, so the
same job code prunes in-process, under the joblib launcher, or on another machine that shares the
storage. The job reads the identity back from its own ``HydraConfig`` (not from ``os.environ``:
Hydra sets ``env_set`` variables in the process and never unsets them, so a plain run after an
in-process multirun job would otherwise think it is still a trial). ``env_set`` also exports the
variables to any process the job starts.

Everything else about the trial (its pruner, the study's directions) is read from the storage,
which is the single source of truth.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

STORAGE = "SWEEPER_STORAGE"
STUDY = "SWEEPER_STUDY"
TRIAL_ID = "SWEEPER_TRIAL_ID"
TRIAL_NUMBER = "SWEEPER_TRIAL_NUMBER"
PARENT_RUN_ID = "SWEEPER_PARENT_RUN_ID"

# Trial system attribute (written by the sweeper at ask time) holding the pruner the job rebuilds.
PRUNER_ATTR = "sweeper:pruner"
# How stale a median/percentile pruner's view of the other trials may get (see _CompletedTrials).
PEERS_REFRESH_SECONDS = 1.0
# How long reported values may wait in the job before they are written to the storage.
SAVE_SECONDS = 1.0


def _quote(value: str) -> str:
    """Quote ``value`` for Hydra's override grammar (any URL, password or path survives)."""
    # Hydra reads a backslash literally unless a run of them precedes a quote or the closing
    # quote; such runs are doubled, and every quote is escaped.
    def escape(match: re.Match) -> str:
        backslashes, quote = match.groups()
        return backslashes * 2 + ("\\" + quote if quote else "")

    escaped = re.sub(r"(\\*)('|$)", escape, value)
    return "'" + escaped + "'"


def overrides_for(
    storage_url: str, study_name: str, trial_id: int, trial_number: int, parent_run_id: str | None
) -> list[str]:
    """The Hydra overrides that tell one job which Optuna trial it is."""
    values = {
        STORAGE: storage_url,
        STUDY: study_name,
        TRIAL_ID: str(trial_id),
        TRIAL_NUMBER: str(trial_number),
        PARENT_RUN_ID: parent_run_id or "",
    }
    return [f"++hydra.job.env_set.{key}={_quote(value)}" for key, value in values.items()]


@dataclass
class TrialLink:
    """The Optuna trial the current job runs as, reached through the storage.

    With the median pruner (or none) the reported values are kept in the job and written to the
    storage in one transaction at most every ``SAVE_SECONDS`` and at :meth:`flush`, which the job
    calls before it returns (so before the sweeper tells the trial's state): no other trial reads
    a running trial's values, and a commit per epoch was most of a short trial's time. Other
    pruners (hyperband, successive halving) go through Optuna's ``report``/``should_prune``.
    """

    storage_url: str
    study_name: str
    trial_id: int
    trial_number: int
    parent_run_id: str | None
    _study: Any = field(default=None, init=False, repr=False)
    _trial: Any = field(default=None, init=False, repr=False)  # Optuna's Trial, other pruners only
    _multi_objective: bool = field(default=False, init=False, repr=False)
    # Steps before which the pruner cannot stop a trial (None: it never can, e.g. pruner=none).
    _first_prunable_step: int | None = field(default=0, init=False, repr=False)
    # Median/percentile pruners and none: the study as the pruner reads it, this trial as
    # reported so far, the values not yet in the storage, and when they were last written.
    _peers: "_CompletedTrials | None" = field(default=None, init=False, repr=False)
    _reported: Any = field(default=None, init=False, repr=False)
    _unsaved: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _saved_at: float = field(default=0.0, init=False, repr=False)

    def _connect(self) -> None:
        if self._study is not None:
            return
        import optuna

        from sweeper.sweep.storage import open_storage

        # The plain RDB storage (no cache in front): a fresh copy of the trial, ours to update.
        trial = open_storage(self.storage_url).get_trial(self.trial_id)
        spec = trial.system_attrs.get(PRUNER_ATTR) or {}
        study = _job_study(self.storage_url, self.study_name, json.dumps(spec, sort_keys=True))
        self._multi_objective = len(study.directions) > 1
        self._first_prunable_step = _first_prunable_step(study.pruner)
        if isinstance(study.pruner, (optuna.pruners.PercentilePruner, optuna.pruners.NopPruner)):
            self._peers = _CompletedTrials(study, PEERS_REFRESH_SECONDS)
            self._reported = trial
            self._saved_at = time.monotonic()
        else:
            self._trial = optuna.trial.Trial(study, self.trial_id)
        self._study = study

    def report(self, epoch: int, value: float) -> bool:
        """Report the objective's value after ``epoch``; return True if the trial should stop.

        Multi-objective studies never prune (Optuna cannot), and a NaN/inf value is not reported:
        the job ends such a trial as FAIL itself. A storage that stopped working raises
        StoreError naming ``hydra.sweeper.storage``.
        """
        from sweeper.sweep.storage import storage_calls

        with storage_calls(self.storage_url, "reporting the trial's values"):
            return self._report(epoch, value)

    def _report(self, epoch: int, value: float) -> bool:
        self._connect()
        if self._multi_objective or not math.isfinite(value):
            return False
        epoch, value = int(epoch), float(value)
        if self._trial is not None:
            self._trial.report(value, epoch)
        else:
            self._reported.intermediate_values[epoch] = value
            self._unsaved[epoch] = value
            if time.monotonic() - self._saved_at >= SAVE_SECONDS:
                self._flush()
        # Skip asking while the pruner's answer is known to be no.
        if self._first_prunable_step is None or epoch < self._first_prunable_step:
            return False
        if self._trial is not None:
            return bool(self._trial.should_prune())
        return bool(self._study.pruner.prune(self._peers, self._reported))

    def flush(self) -> None:
        """Write the reported values not yet in the storage (one transaction)."""
        from sweeper.sweep.storage import storage_calls

        with storage_calls(self.storage_url, "saving the trial's values"):
            self._flush()

    def _flush(self) -> None:
        if not self._unsaved:
            return
        from sweeper.sweep.storage import save_intermediate_values

        values, self._unsaved = self._unsaved, {}
        save_intermediate_values(self._study._storage, self.trial_id, values)
        self._saved_at = time.monotonic()


class _CompletedTrials:
    """A study as a median/percentile pruner reads it: its direction and its COMPLETE trials.

    ``Trial.should_prune`` re-reads every unfinished trial of the study from the storage on each
    call (~4 ms on SQLite, at every epoch of every trial: most of a short trial's time). The
    percentile pruner only looks at COMPLETE trials, which change only when another trial ends,
    so this re-reads them at most every ``refresh`` seconds. In a one-process sweep no trial ends
    while a job runs, and the answers are exactly Optuna's; a worker sharing the storage with
    others sees their newly completed trials up to ``refresh`` seconds late.
    """

    def __init__(self, study: Any, refresh: float) -> None:
        self._study, self._refresh = study, refresh
        self._trials: list | None = None
        self._read_at = -math.inf

    @property
    def direction(self) -> Any:
        return self._study.direction

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list:
        from optuna.trial import TrialState

        if tuple(states or ()) != (TrialState.COMPLETE,):  # not what a percentile pruner asks
            return self._study.get_trials(deepcopy=deepcopy, states=states)
        now = time.monotonic()
        if self._trials is None or now - self._read_at >= self._refresh:
            self._trials = self._study.get_trials(deepcopy=False, states=states)
            self._read_at = now
        return copy.deepcopy(self._trials) if deepcopy else self._trials


@functools.lru_cache(maxsize=4)
def _job_study(storage_url: str, study_name: str, pruner_spec: str) -> Any:
    """The study as the jobs of one process see it, with the trial's pruner.

    Kept for the process: Optuna's study caches the finished trials it has read, so the jobs
    after the first (in-process, or in one joblib worker) read only what changed since, instead
    of every trial of the study with every epoch's value (O(trials²) over a sweep).
    """
    import optuna

    from sweeper.sweep.registry import make_pruner
    from sweeper.sweep.storage import open_storage

    spec = json.loads(pruner_spec)
    return optuna.load_study(
        study_name=study_name,
        storage=open_storage(storage_url),
        # The sweeper samples; the job never does, so the cheapest sampler will do.
        sampler=optuna.samplers.RandomSampler(),
        pruner=make_pruner(spec.get("name", "none"), spec.get("kwargs")),
    )


def _first_prunable_step(pruner: Any) -> int | None:
    """The first step at which ``pruner`` may prune: None for NopPruner, ``n_warmup_steps`` for the
    median/percentile pruners (they answer no before it), else 0."""
    import optuna

    if isinstance(pruner, optuna.pruners.NopPruner):
        return None
    if isinstance(pruner, optuna.pruners.PercentilePruner):
        return int(getattr(pruner, "_n_warmup_steps", 0) or 0)
    return 0


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
    )
