"""The sweep's loop: ask trials, launch them as Hydra jobs, tell Optuna how they ended."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from typing import Any, Callable, Sequence

import optuna
from hydra.core.utils import JobReturn
from omegaconf import DictConfig
from optuna.trial import TrialState

from sweeper.errors import JobLost, StoreError, job_error, one_line
from sweeper.sweep import console, launching, space as search_space, study as studies, trial_link
from sweeper.sweep.storage import budget_lock, storage_calls
from sweeper.tracking.store import wait_until_alive

log = logging.getLogger(__name__)


class TrialLoop:
    """One sweeper process's pass over a study: ask trials, launch each as a job whose overrides
    are its values plus its identity (:mod:`sweeper.sweep.trial_link`), tell each result, until
    the study holds ``n_trials`` counted trials (:mod:`sweeper.sweep.study` says what counts)."""

    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
        space: search_space.SearchSpace,
        objectives: list[str],
        *,
        storage_url: str,
        identity: trial_link.Identity,
        mlflow_uri: str,
        launcher: Any,
        compose_once: Callable[[list[str]], DictConfig],
        verbose: bool = False,
        unowned_grace: float | None = None,
    ) -> None:
        """``storage_url``: the storage as the sweeper opened it (its error lines and budget lock
        name it); ``identity``: what every job is told (``trial_link.Identity``);
        ``compose_once``: the cached composition the space's conditional keys are read from;
        ``unowned_grace``: seconds before a trial no sweeper recorded itself on is FAIL
        (``hydra.sweeper.grace_period``; None: ``studies.UNOWNED_GRACE_SECONDS``)."""
        self.study, self.storage, self.space, self.objectives = study, storage, space, objectives
        self.study_id = storage.get_study_id_from_name(study.study_name)
        self.trial_ids: dict[int, int] = {}  # trial number -> the storage's id, as each is asked
        self.storage_url, self.identity, self.mlflow_uri = storage_url, identity, mlflow_uri
        self.launcher, self.compose_once, self.verbose = launcher, compose_once, verbose
        self.heartbeat = studies.heartbeat_interval(storage)  # seconds; None: a journal file has none
        self.unowned_grace = studies.UNOWNED_GRACE_SECONDS if unowned_grace is None else unowned_grace
        self.started = time.monotonic()
        self.job_idx = 0
        self.lock = threading.Lock()  # asking and telling take turns (lanes)
        self.n_trials, self.n_jobs = 0, 1
        self.durations: list[float] = []  # seconds of each trial this process told

    def loop(self, n_trials: int, timeout: float | None, n_jobs: int) -> list[Sequence[JobReturn]]:
        """Run trials until the study holds ``n_trials`` counted ones (or ``timeout`` passes): ``n_jobs``
        running at once (:meth:`_lanes`) where ``launching.concurrent_launches``, else batches of
        ``n_jobs``, each launched whole and waited for (SLURM submits a batch as one job array)."""
        self.n_trials, self.n_jobs = n_trials, n_jobs
        returns: list[Sequence[JobReturn]] = []
        with console.quiet_launcher(self.launcher, self.verbose):
            if n_jobs > 1 and launching.concurrent_launches(self.launcher):
                self._lanes(returns, n_trials, timeout, n_jobs)
            # Batches; after lanes, what is left: other workers' running trials to wait for, and
            # the retries of those that die.
            while (asked := self._next(n_jobs, n_trials, timeout)) is not None:
                index, self.job_idx = self.job_idx, self.job_idx + len(asked[1])
                returns.append(self._run(*asked, index))
        return returns

    def _lanes(self, returns: list[Sequence[JobReturn]], n_trials: int, timeout: float | None, n_jobs: int) -> None:
        """``n_jobs`` lanes (threads), each asking one trial, launching it and telling how it
        ended, then asking the next: a pruned trial frees its slot at once. Asking and telling
        take turns under one lock (TPE's ``constant_liar`` keeps lanes off the same point). The
        first failure (a store that stopped working, Ctrl-C) stops every lane from asking again,
        and fails the trials still running. Each run's returns are appended to ``returns``."""
        running: dict[int, optuna.Trial] = {}
        failures: list[BaseException] = []

        def lane() -> None:
            try:
                while True:
                    with self.lock:
                        if failures or (asked := self._next(1, n_trials, timeout, wait=False)) is None:
                            return
                        (trial,), batch = asked
                        index, self.job_idx = self.job_idx, self.job_idx + 1
                        running[trial.number] = trial
                    try:
                        returns.append(self._run([trial], batch, index))
                    finally:
                        running.pop(trial.number)
            except BaseException as err:  # asking (a storage that stopped working), or the trial's run
                failures.append(err)

        threads = [threading.Thread(target=lane, name=f"sweeper-lane-{i}", daemon=True) for i in range(n_jobs)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except KeyboardInterrupt as err:
            failures.append(err)
            launching.stop_jobs(self.launcher)  # jobs in other processes end interrupted
            with self.lock:
                self._fail_unfinished(list(running.values()), err)
            raise
        if failures:
            raise failures[0]

    def _next(self, n: int, n_trials: int, timeout: float | None,
              wait: bool = True) -> tuple[list[optuna.Trial], list[list[str]]] | None:
        """Ask up to ``n`` trials with their jobs' overrides; None when the sweep is done (the
        budget is used, the timeout passed, or other workers took the last trials). With
        ``wait``, a study whose budget is used while trials still run (or no sweeper recorded
        itself on, until ``unowned_grace`` passes) waits for them to end or be failed first."""
        said = False
        while True:
            with storage_calls(self.storage_url, "asking for trials"):
                self.fail_orphans()
                finished, running = studies.count(self.study)
                remaining = n_trials - finished - running
                waiting = remaining <= 0 and running and wait  # for trials running elsewhere
                unowned = studies.unowned_running(self.study) if waiting else []
            if unowned and not said:
                said = True
                log.info("waiting for trial %s: no sweeper recorded itself on it (its sweeper may have lost the "
                         "storage as it asked for it); it is FAIL and retried %.0f s after it started if none does",
                         ", ".join(str(t.number) for t in unowned), self.unowned_grace)
            if waiting and (self.heartbeat or unowned):  # so the study never ends with a trial RUNNING
                time.sleep(min(self.heartbeat or 1, 5))
                continue
            if remaining <= 0:
                return None
            if timeout is not None and time.monotonic() - self.started >= timeout:
                log.info("timeout of %ss reached: no new trial", timeout)
                return None
            # A server that stopped answering gets MLflow's retry budget to come back; then the
            # sweep stops before it starts a trial that could only fail.
            wait_until_alive(self.mlflow_uri)
            trials, batch = self._ask(min(n, remaining), n_trials)
            return (trials, batch) if trials else None  # none: other workers took the last trials

    def _run(self, trials: list[optuna.Trial], batch: list[list[str]], index: int) -> Sequence[JobReturn]:
        """Launch ``batch`` (the jobs of ``trials``) and tell each trial how its job ended, up to
        the first whose job found a store broken; whatever had not ended when something failed
        (Ctrl-C, a store that stopped working, the launcher) is FAIL."""
        try:
            with studies.Heartbeat(self.storage, [self._id(t) for t in trials], self.heartbeat):
                results = self.launcher.launch(batch, initial_job_idx=index)
            with self.lock, storage_calls(self.storage_url, "recording the trials' results"):
                broken = next(filter(None, (self._tell(trial, result) for trial, result in zip(trials, results))), None)
            if broken is not None:
                raise broken
        except BaseException as err:
            with self.lock:
                self._fail_unfinished(trials, err)
            raise
        return results

    def _fail_unfinished(self, trials: list[optuna.Trial], err: BaseException) -> None:
        """FAIL the trials of a batch ``err`` interrupted (those not told yet). After Ctrl-C or a
        store failure, not the trials' fault, each is retried with the same parameters on the
        next run. Best effort: the storage itself may be what failed (its trials are then
        failed and retried as orphans on resume)."""
        interrupted = isinstance(err, KeyboardInterrupt)
        reason = "interrupted (Ctrl-C)" if interrupted else str(err) if isinstance(err, StoreError) else one_line(err)
        failed = []
        for trial in trials:
            with contextlib.suppress(Exception):  # already finished: told before the interruption
                trial.set_user_attr(studies.REASON, reason)
                self.study.tell(trial, state=TrialState.FAIL)
                failed.append(trial.number)
        if not failed or not (interrupted or isinstance(err, StoreError)):
            return
        with contextlib.suppress(Exception):
            for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
                if frozen.number in failed:
                    studies.retry(self.study, frozen)

    def fail_orphans(self) -> None:
        """FAIL the trials whose sweeper died or stopped beating, with a progress line each."""
        for trial in studies.fail_orphaned_trials(self.study, self.storage, self.unowned_grace):
            reason = self.storage.get_trial(self._id(trial)).user_attrs.get(studies.REASON)
            log.info("trial %d FAIL %s | %s", trial.number,
                     reason or "its sweeper stopped sending heartbeats", _retry_note(trial))

    def _ask(self, n: int, n_trials: int) -> tuple[list[optuna.Trial], list[list[str]]]:
        """Up to ``n`` trials and their jobs' overrides; if anything goes wrong, those asked are FAIL."""
        storage, trials, batch = self.storage, [], []
        try:
            with storage_calls(self.storage_url, "asking for trials"):
                for _ in range(n):
                    with budget_lock(self.storage_url, self.study.study_name) as locked:
                        finished, running = studies.count(self.study)
                        if finished + running >= n_trials:
                            break  # other workers took the last trials
                        trial = self.study.ask()
                    if not locked and not studies.within_budget(self.study, trial, n_trials):
                        # No lock on this database, and workers asked at once: hand this one, past the
                        # budget, back (WAITING, no params yet); the next ask anywhere reuses it.
                        storage.set_trial_state_values(self._id(trial), TrialState.WAITING)
                        break
                    trials.append(trial)
                    trial_id = self._id(trial)
                    studies.mark_owner(storage, trial_id)
                    overrides = self.space.suggest(trial, self.compose_once)
                    storage.set_trial_system_attr(trial_id, studies.OVERRIDES, overrides)
                    batch.append(overrides + self.identity.overrides(trial_id, trial.number))
        except BaseException as err:
            self._fail_unfinished(trials, err)
            raise
        return trials, batch

    def _id(self, trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
        """The storage's id of ``trial`` (Optuna's public storage API, asked once per trial)."""
        if trial.number not in self.trial_ids:
            self.trial_ids[trial.number] = self.storage.get_trial_id_from_study_id_trial_number(
                self.study_id, trial.number)
        return self.trial_ids[trial.number]

    def _tell(self, trial: optuna.Trial, result: JobReturn) -> StoreError | None:
        """Tell ``trial`` how its job ended, with a progress line; a job that found the tracking
        store or the storage broken is not told (the sweep stops, ``_fail_unfinished``): its
        StoreError is returned instead."""
        error = job_error(result)
        if isinstance(error, StoreError):
            return error
        state, values, metrics, run_id, reason = self._outcome(result, error)
        lost = isinstance(error, JobLost)
        for key, value in ((studies.RUN_ID, run_id), (studies.METRICS, metrics), (studies.REASON, reason)):
            if value:
                trial.set_user_attr(key, value)
        try:
            self.study.tell(trial, values, state=state)
        except optuna.exceptions.UpdateFinishedTrialError:
            log.warning("trial %d was already finished by another process", trial.number)
            lost = False  # and retried by it, if it had to be
        except RuntimeError as err:
            # GridSampler calls Study.stop() once the grid is covered, which only works inside
            # Study.optimize; the trial is already told, and the loop stops at the grid's size.
            if "Study.stop" not in str(err):
                raise
        frozen = self.storage.get_trial(self._id(trial))
        if lost:
            # Its job was killed, like a worker that died: one retry with the same parameters.
            studies.retry(self.study, frozen)
            reason = f"{reason} | {_retry_note(frozen)}"
        self._progress(frozen, state, values, reason)
        return None

    def _outcome(self, result: JobReturn, error: BaseException | None
                 ) -> tuple[TrialState, list[float] | None, dict, str | None, str | None]:
        """How the job ended: (state, objective values, metrics, MLflow run id, reason)."""
        if error is not None:  # job_error gives every job that did not complete its error
            return TrialState.FAIL, None, {}, None, str(error) if isinstance(error, JobLost) else one_line(error)
        ret = result.return_value
        if not isinstance(ret, dict) or ret.get("state") not in ("COMPLETE", "PRUNED", "FAIL"):
            return TrialState.FAIL, None, {}, None, f"the task function returned {type(ret).__name__}, not a trial result"
        metrics = {k: float(v) for k, v in (ret.get("metrics") or {}).items() if isinstance(v, (int, float))}
        run_id, reason = ret.get("run_id"), ret.get("reason") or ("failed" if ret["state"] == "FAIL" else None)
        if ret["state"] != "COMPLETE":
            return TrialState[ret["state"]], None, metrics, run_id, reason
        values = [metrics.get(name) for name in self.objectives]
        for name, value in zip(self.objectives, values):
            if value is None or not math.isfinite(value):
                why = f"objective {name} is {'missing' if value is None else value}"
                return TrialState.FAIL, None, metrics, run_id, why
        return TrialState.COMPLETE, values, metrics, run_id, None

    def _progress(self, trial: optuna.trial.FrozenTrial, state: TrialState, values: list[float] | None,
                  reason: str | None) -> None:
        took = trial.duration.total_seconds() if trial.duration else 0.0
        if values is not None:
            shown = " ".join(f"{m}={v:.6g}" for m, v in zip(self.objectives, values))
        elif state == TrialState.PRUNED and trial.intermediate_values:
            step = max(trial.intermediate_values)
            shown = f"{self.objectives[0]}={trial.intermediate_values[step]:.6g} at epoch {step}"
        else:
            shown = reason or ""
        best = studies.best_trials(self.study, self.objectives)
        if not best:
            best_text = "best none yet"
        elif len(self.objectives) == 1:
            best_text = f"best {best[0].value:.6g} (#{best[0].number})"
        else:
            best_text = f"Pareto front {len(best)} trial{'s' if len(best) > 1 else ''}"
        finished, _ = studies.count(self.study)
        self.durations.append(took)
        eta = console.eta(self.durations, self.n_trials - finished, self.n_jobs)
        log.info("%s", console.progress_line(trial.number, state, shown, best_text, took, finished, self.n_trials, eta))


def _retry_note(failed: optuna.trial.FrozenTrial) -> str:
    """What happens next to a trial whose worker or job died (``studies.retry``)."""
    if studies.is_retried(failed):
        return "retried once with the same parameters"
    return "not retried again: it was itself a retry"
