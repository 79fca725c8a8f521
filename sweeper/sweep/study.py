"""The Optuna study of a sweep: objectives and directions, create-or-resume, trial ownership.

Counting rule: every trial that ends, whatever its state (COMPLETE, PRUNED or FAIL), counts
towards ``n_trials``, except a trial whose worker died: it is FAIL and retried once with the
same parameters (Optuna's ``failed_trial`` system attribute links the retry to it), and only
the retry counts. A resumed sweep runs ``n_trials`` minus the trials already counted or still
running elsewhere.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import socket
import threading
import zlib
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeper.errors import ConfigError
from sweeper.sweep.space import describe
from sweeper.train.metrics import infer_direction

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

# Trial system attributes written by the sweeper.
OWNER_HOST = "sweeper:host"
OWNER_PID = "sweeper:pid"
OVERRIDES = "sweeper:overrides"
# Trial user attributes (shown by trials_dataframe and optuna-dashboard).
RUN_ID = "run_id"
REASON = "reason"
METRICS = "metrics"
# Optuna's own key (RetryFailedTrialCallback): the number of the trial a retry replaces.
RETRY_OF = "failed_trial"
# Study system attributes.
PARENT_RUN_ID = "sweeper:parent_run_id"
# Study user attributes: what its trials are about (check_identity), the space searched (check_space).
IDENTITY = "sweeper:identity"
SPACE = "sweeper:space"


def objectives_and_directions(
    objective: str, direction: str | None, directions: list[str] | None
) -> tuple[list[str], list[str]]:
    """The metrics the study optimises and their directions: ``directions`` (metric names) makes
    a multi-objective study; otherwise the single ``objective`` with ``direction`` or its inferred one."""
    if directions:
        metrics = [str(m) for m in directions]
        if any(m in ("minimize", "maximize") for m in metrics):
            raise ConfigError(
                "hydra.sweeper.directions lists metric names (e.g. [val_rmse,generalization_gap]);"
                " each direction is inferred (r2, accuracy, f1_macro, roc_auc -> maximize, else minimize)"
            )
        return metrics, [infer_direction(m) for m in metrics]
    if direction is None:
        return [objective], [infer_direction(objective)]
    if direction not in ("minimize", "maximize"):
        raise ConfigError(
            f"hydra.sweeper.direction={direction!r}; choose minimize, maximize or null"
        )
    return [objective], [direction]


def create_or_load(
    storage: optuna.storages.BaseStorage, study_name: str, directions: list[str],
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, bool]:
    """The study called ``study_name`` with ``pruner``, created if missing; also whether this
    call created it (atomic in the storage: of several workers starting together, exactly one)."""
    wanted = [optuna.study.StudyDirection[d.upper()] for d in directions]
    try:
        storage.create_new_study(wanted, study_name)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        created = False
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    if list(study.directions) != wanted:
        have = [d.name.lower() for d in study.directions]
        raise ConfigError(
            f"hydra.sweeper.study_name={study_name!r} already exists with directions {have}, "
            f"not {directions}; choose another study_name"
        )
    return study, created


def default_name(experiment: str, search: str | None, space: dict[str, str], objectives: list[str]) -> str:
    """The study name when ``hydra.sweeper.study_name`` is unset: ``<experiment>-<search>-<digest>``,
    e.g. ``car_prices-default-3f2a1c``, where the digest (6 hex digits of SHA-256) covers the swept
    keys' distributions (``SearchSpace.described``) and the objectives. Another space or objective
    is another study, so sweeps over different spaces run one after another on one store, and
    rerunning a command resumes its own study."""
    text = json.dumps([sorted(space.items()), list(objectives)])
    digest = hashlib.sha256(text.encode()).hexdigest()[:6]
    return "-".join(part for part in (experiment, search, digest) if part)


def check_space(study: optuna.Study, space: dict[str, str]) -> None:
    """Keep a study to one search space: the first sweep records ``space`` (key -> distribution
    in the sweep grammar); a later sweep whose space differs is refused in one line naming the
    key, before any trial. A study without the record is compared with its trials' distributions."""
    recorded = study.user_attrs.get(SPACE)
    if recorded is None:
        recorded = {key: describe(d) for t in study.get_trials(deepcopy=False) for key, d in t.distributions.items()}
        if not recorded:
            study.set_user_attr(SPACE, dict(space))
            return
    if recorded == space:
        return
    key = min(k for k in set(recorded) | set(space) if recorded.get(k) != space.get(k))
    before = f"searched {key}={recorded[key]}" if key in recorded else f"did not search {key}"
    now = f"this sweep {key}={space[key]}" if key in space else "this sweep does not"
    raise ConfigError(
        f"hydra.sweeper.study_name={study.study_name!r}: its trials {before}, {now}; leave study_name "
        f"unset (the default name follows the space) or name a new study"
    )


def worker_seed(seed: int | None, study: optuna.Study, created: bool) -> int | None:
    """The sampler's seed for this process: ``seed`` in a new study, so a fresh sweep is
    reproducible; a worker joining an existing study (a resume, or one of many workers) offsets
    it by the trials already asked and by its host and process id, so it replays neither the
    first run nor a worker started with it."""
    if seed is None or created:
        return seed
    worker = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode())
    return (int(seed) + len(study.get_trials(deepcopy=False)) + worker) % 2**32


def check_metric_names(study: optuna.Study, objectives: list[str]) -> None:
    """ConfigError when a resumed study optimised other metrics: its trials' values, the best
    trial and the pruner's curves would mix two metrics under one name."""
    before = study.metric_names
    if before and list(before) != list(objectives):
        key = "objective" if len(objectives) == 1 else "hydra.sweeper.directions"
        shown = objectives[0] if len(objectives) == 1 else f"[{','.join(objectives)}]"
        raise ConfigError(
            f"hydra.sweeper.study_name={study.study_name!r} already optimises {', '.join(before)}; "
            f"{key}={shown} would rank its trials on another metric: choose another study_name"
        )


def check_identity(study: optuna.Study, identity: dict[str, str]) -> None:
    """Keep a study to one problem: the first sweep records ``identity`` (what the app's
    preflight says its trials are about: target, data file and its SHA-256, columns); a later
    one with a different identity is refused in one line."""
    if not identity:
        return
    recorded = study.user_attrs.get(IDENTITY)  # a user attribute: optuna-dashboard shows it too
    if recorded is None:
        study.set_user_attr(IDENTITY, dict(identity))
        return
    for key in identity:
        if key in recorded and recorded[key] != identity[key]:
            raise ConfigError(
                f"hydra.sweeper.study_name={study.study_name!r}: that study's trials have {key}={recorded[key]!r}, "
                f"this sweep's {identity[key]!r}; choose another study_name (or storage) for a new study")


def mark_owner(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    """Record which process runs a trial, so a restart can tell a dead owner from a live one."""
    storage.set_trial_system_attr(trial_id, OWNER_HOST, socket.gethostname())
    storage.set_trial_system_attr(trial_id, OWNER_PID, os.getpid())


def _owner_is_dead(trial: FrozenTrial) -> bool:
    pid = trial.system_attrs.get(OWNER_PID)
    if trial.system_attrs.get(OWNER_HOST) != socket.gethostname() or pid in (None, os.getpid()):
        return False  # another machine (only its heartbeat can tell), no owner, or this process
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


#: A RUNNING trial with no owner recorded this long after it started was asked by a sweeper that
#: died (or lost its storage) before it could record itself: ask and mark_owner are milliseconds
#: apart, and without an owner or a heartbeat nothing else would ever end it.
UNOWNED_GRACE_SECONDS = 60.0


def unowned_running(study: optuna.Study) -> list[FrozenTrial]:
    """The RUNNING trials no sweeper recorded itself on (yet, or ever: see ``UNOWNED_GRACE_SECONDS``);
    ``mark_owner`` writes the process id last, so a trial without it is unowned."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if OWNER_PID not in t.system_attrs]


def fail_orphaned_trials(
    study: optuna.Study, storage: optuna.storages.BaseStorage, unowned_after: float | None = None
) -> list[FrozenTrial]:
    """Fail RUNNING trials whose sweeper died: dead owner process on this host, no heartbeat (a
    database storage), or no owner recorded ``unowned_after`` seconds (``UNOWNED_GRACE_SECONDS``)
    after the trial started. Returns the trials this call failed."""
    failed = []
    now = datetime.datetime.now()
    grace = UNOWNED_GRACE_SECONDS if unowned_after is None else unowned_after
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        unowned = (OWNER_PID not in trial.system_attrs and trial.datetime_start is not None
                   and (now - trial.datetime_start).total_seconds() >= grace)
        if unowned or _owner_is_dead(trial):
            trial_id = storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(study.study_name), trial.number)
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):  # another worker was first
                storage.set_trial_user_attr(trial_id, REASON, "its sweeper process died")
                if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                    failed.append(trial)
                    retry(study, trial)
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    optuna.storages.fail_stale_trials(study)
    after = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    failed += [after[n] for n in before if n in after]
    return failed


def heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    """Seconds between heartbeats of ``storage``, or None when it has none (a journal file)."""
    return getattr(storage, "get_heartbeat_interval", lambda: None)()  # a database storage's


def is_retried(failed: FrozenTrial) -> bool:
    """Whether a trial whose worker died gets a retry: yes, unless it was itself a retry."""
    return RETRY_OF not in failed.system_attrs


def retry(study: optuna.Study, failed: FrozenTrial) -> None:
    """Queue one retry of ``failed``, a trial whose worker died, with the same parameters
    (unless it was itself a retry).

    The retry carries Optuna's ``failed_trial`` and ``retry_history`` system attributes, as
    ``RetryFailedTrialCallback(max_retry=1)`` writes them; that callback is not used because it
    also copies the dead trial's user attributes (MLflow run id, fail reason) onto the retry.
    """
    if is_retried(failed):
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=failed.params, distributions=failed.distributions,
            system_attrs={RETRY_OF: failed.number, "retry_history": [failed.number]},
        ))


def count(study: optuna.Study, below: int | None = None) -> tuple[int, int]:
    """(counted finished, running) trials in the study; running ones numbered ``below`` it only,
    when given. A retried FAIL counts through its retry."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get(RETRY_OF) for t in trials}
    finished = sum(t.state in FINISHED and t.number not in retried for t in trials)
    return finished, sum(t.state == TrialState.RUNNING and (below is None or t.number < below) for t in trials)


def within_budget(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Whether ``trial``, just asked, fits in ``n_trials``: the counted finished trials plus the
    running ones numbered before it leave room. Workers that asked at the same moment all see the
    same trials, so exactly the lowest numbers run and the others are handed back."""
    return sum(count(study, below=trial.number)) < n_trials


class Heartbeat:
    """Records a heartbeat for the trials in flight until stopped (a daemon thread). The sweeper,
    not the job, beats: when it dies its trials go stale and another worker (or the next run) fails them."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_ids: list[int], interval: int | None):
        self._storage, self._ids, self._interval = storage, trial_ids, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sweeper-heartbeat")

    def _run(self) -> None:
        while True:
            for trial_id in self._ids:
                with contextlib.suppress(Exception):  # a transient database error must not kill the sweep
                    self._storage.record_heartbeat(trial_id)
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> "Heartbeat":
        if self._interval:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def best_trials(study: optuna.Study, objectives: list[str]) -> list[FrozenTrial]:
    """The best trial (one objective) or the Pareto front by number; [] before any COMPLETE trial."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    if len(objectives) == 1:
        return [study.best_trial]
    return sorted(study.best_trials, key=lambda t: t.number)


def why_none_completed(study: optuna.Study) -> str:
    """One line for a study with no COMPLETE trial: its counts and the most common fail reason."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    counts = ", ".join(f"{n} {state.name}" for state in FINISHED
                       if (n := sum(t.state == state for t in trials)))
    line = f"no trial of study '{study.study_name}' completed ({counts or 'no trial finished'})"
    reasons = [t.user_attrs.get(REASON) or "no reason recorded" for t in trials if t.state == TrialState.FAIL]
    if reasons:
        # Reasons differ in their numbers (epoch, lr): count them by their words.
        kinds = [re.sub(r"\d[\d.e+-]*", "#", reason) for reason in reasons]
        kind, n = Counter(kinds).most_common(1)[0]
        line += f"; most common fail reason ({n} of {len(reasons)}): {reasons[kinds.index(kind)]}"
    return line
