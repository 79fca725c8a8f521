"""Trials a dead sweeper left RUNNING are failed and retried on the next start."""

from __future__ import annotations

import os
import re
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.sweep import study as studies
from sweeper.sweep.storage import open_storage


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_running_trial_whose_sweeper_never_recorded_itself_is_failed_and_retried(tmp_path, kind):
    """A sweeper that lost its storage between ``ask`` and ``mark_owner`` (a store made read-only)
    leaves a RUNNING trial with no owner and no heartbeat: nothing else would ever end it, and a
    resumed sweep would wait for it for ever."""
    url = str(tmp_path / "optuna.log") if kind == "journal" else f"sqlite:///{tmp_path}/optuna.db"
    storage = open_storage(url, 60, 120)
    study = optuna.create_study(storage=storage, study_name="s")
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    mine = study.ask()
    studies.mark_owner(storage, mine._trial_id)  # this process: alive

    assert studies.fail_orphaned_trials(study, storage, unowned_after=3600) == []  # its sweeper may be marking it
    [failed] = studies.fail_orphaned_trials(study, storage, unowned_after=0)
    assert failed.number == orphan.number
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    assert trials[orphan.number].user_attrs[studies.REASON] == "its sweeper process died"
    assert trials[mine.number].state == TrialState.RUNNING
    [retry] = [t for t in trials if t.state == TrialState.WAITING]
    assert retry.system_attrs[studies.RETRY_OF] == orphan.number and retry.params == orphan.params


def test_a_study_resumed_with_another_objective_is_refused(tmp_path):
    """Its trials' values, best trial and pruning curves would mix two metrics under one name."""
    from sweeper.errors import ConfigError

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study, created = studies.create_or_load(storage, "digits", ["maximize"])
    assert created
    studies.check_metric_names(study, ["val_accuracy"])  # a new study: anything goes
    study.set_metric_names(["val_accuracy"])
    study, created = studies.create_or_load(storage, "digits", ["maximize"])
    assert not created
    studies.check_metric_names(study, ["val_accuracy"])  # the same metric resumes
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.study_name='digits' already optimises val_accuracy; "
                                          r"objective=val_roc_auc would rank its trials on another metric"):
        studies.check_metric_names(study, ["val_roc_auc"])


@pytest.mark.parametrize("recorded", ["nothing", "only its host"])
def test_a_resume_whose_budget_an_unowned_trial_fills_waits_for_it_then_fails_and_retries_it(
        tmp_path, caplog, recorded):
    """A sweeper that lost its storage between asking a trial and recording itself on it (or
    between recording its host and its process id) leaves it RUNNING: the rerun, whose budget
    that trial fills, waits until its grace (``hydra.sweeper.grace_period``; 1 s here) has passed since it started, fails
    it and runs its retry, instead of ending at once with the study one trial short and the
    trial RUNNING."""
    import logging
    import socket

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeper.sweep import space as search_space
    from sweeper.sweep.loop import TrialLoop
    from sweeper.sweep.trial_link import Identity

    url = str(tmp_path / "optuna.log")
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    study.tell(study.ask(), 1.0)
    x = optuna.distributions.FloatDistribution(0, 1)
    orphan = study.ask({"x": x})
    if recorded == "only its host":
        storage.set_trial_system_attr(orphan._trial_id, studies.OWNER_HOST, socket.gethostname())
    space = search_space.parse({"x": "interval(0,1)"}, [], OverridesParser.create())
    loop = TrialLoop(study, storage, space, ["val_rmse"], storage_url=url, identity=Identity(url, "s", None),
                     mlflow_uri=f"sqlite:///{tmp_path}/mlflow.db", launcher=None,
                     compose_once=lambda overrides: pytest.fail("no group here"), unowned_grace=1.0)

    with caplog.at_level(logging.INFO, logger="sweeper"):
        asked = loop._next(1, 2, None)
    assert asked is not None, "the rerun ended with the unowned trial RUNNING"
    [retry], [overrides] = asked
    trials = study.get_trials(deepcopy=False)
    assert trials[orphan.number].state == TrialState.FAIL
    assert trials[retry.number].system_attrs[studies.RETRY_OF] == orphan.number
    assert overrides[0] == f"x={orphan.params['x']}"  # the same point, then the trial's identity
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting")] == [
        f"waiting for trial {orphan.number}: no sweeper recorded itself on it (its sweeper may have lost the "
        "storage as it asked for it); it is FAIL and retried 1 s after it started if none does"]


def test_a_storage_that_fails_between_trials_is_one_store_error_naming_the_storage(tmp_path):
    """The checks before each ask (orphans, the budget) read the storage too: a store that stops
    working there (PostgreSQL stopped while a trial ended) stops the sweep with the same one
    line as a failure while asking, not the storage's bare error (seen under load: Optuna's
    "An exception is raised during the commit ...")."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeper.errors import StoreError
    from sweeper.sweep import space as search_space
    from sweeper.sweep.loop import TrialLoop
    from sweeper.sweep.trial_link import Identity

    url = str(tmp_path / "optuna.log")
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    study.tell(study.ask(), 1.0)
    space = search_space.parse({"x": "interval(0,1)"}, [], OverridesParser.create())
    loop = TrialLoop(study, storage, space, ["val_rmse"], storage_url=url, identity=Identity(url, "s", None),
                     mlflow_uri=f"sqlite:///{tmp_path}/mlflow.db", launcher=None,
                     compose_once=lambda overrides: pytest.fail("no group here"))
    os.remove(url)
    os.mkdir(url)  # the journal can no longer be read (as root, a chmod would not stop it)
    with pytest.raises(StoreError, match=r"^hydra\.sweeper\.storage=.*optuna\.log: asking for trials failed: "):
        loop._next(1, 3, None)


def test_a_running_trial_whose_sweeper_process_is_gone_is_failed_on_a_journal_file(tmp_path):
    """A journal file has no heartbeats: the owner's process id tells a dead sweeper."""
    import subprocess
    import sys

    url = str(tmp_path / "optuna.log")
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    dead = study.ask()
    studies.mark_owner(storage, dead._trial_id)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    storage.set_trial_system_attr(dead._trial_id, studies.OWNER_PID, int(gone.stdout))
    alive = study.ask()
    studies.mark_owner(storage, alive._trial_id)

    assert [t.number for t in studies.fail_orphaned_trials(study, storage)] == [dead.number]
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[dead.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING


def test_a_journal_lock_optuna_cannot_remove_is_a_storage_failure_and_a_refused_call_is_not(tmp_path):
    """``storage_calls`` turns what the store's failure raises into one StoreError naming
    ``hydra.sweeper.storage``, and lets Optuna's refusal of a wrong call through unchanged."""
    from optuna.storages.journal import JournalFileSymlinkLock

    from sweeper.errors import StoreError
    from sweeper.sweep.storage import storage_calls

    url = str(tmp_path / "optuna.log")
    lock = JournalFileSymlinkLock(url)
    with pytest.raises(RuntimeError) as raised:  # what Optuna's release raises when its lock is gone
        lock.release()
    with pytest.raises(StoreError, match=r"^hydra\.sweeper\.storage=.*optuna\.log: telling failed: "):
        with storage_calls(url, "telling"):
            raise raised.value

    with pytest.raises(RuntimeError, match="dictionary changed size"):  # not the store's: as it was
        with storage_calls(url, "telling"):
            raise RuntimeError("dictionary changed size during iteration")

    storage = open_storage(url)
    trial = optuna.create_study(storage=storage).ask()
    storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [1.0])
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError) as refused:  # the call was wrong
        storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [2.0])
    with pytest.raises(type(refused.value)):
        with storage_calls(url, "telling"):
            raise refused.value


def _space(*overrides: str) -> dict[str, str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeper.sweep import space

    return space.parse({}, overrides, OverridesParser.create()).described()


def test_a_journal_lock_left_by_a_killed_process_is_taken_over_within_seconds(tmp_path):
    """A process SIGKILLed while it appends (each epoch's value is one append) leaves the journal's
    lock file behind: the next sweep takes it over after the grace period, 5 s, not Optuna's
    default 30 s, during which a rerun after a kill said nothing."""
    from sweeper.sweep.storage import JOURNAL_LOCK_GRACE_SECONDS

    journal = tmp_path / "optuna.log"
    journal.touch()
    os.symlink(journal, f"{journal}.lock")  # what a killed holder leaves: Optuna's lock is this symlink
    started = time.monotonic()
    optuna.create_study(study_name="after-a-kill", storage=open_storage(str(journal)))
    took = time.monotonic() - started
    # The grace the code sets, with slack for a loaded machine, and well short of Optuna's 30 s.
    assert JOURNAL_LOCK_GRACE_SECONDS <= took < 20, took
    assert not os.path.lexists(f"{journal}.lock")
    assert optuna.get_all_study_names(open_storage(str(journal))) == ["after-a-kill"]


def test_the_default_study_name_follows_the_space_and_the_objectives():
    """Another space or objective is another study, so the README's sweeps run one after another
    on one store; the same command gives the same name, so rerunning it resumes."""
    default = _space("model.hidden=choice([32],[64,32])", "optimizer.lr=tag(log,interval(1e-3,0.1))")
    assert default == {"model.hidden": "choice([32],[64,32])", "optimizer.lr": "tag(log,interval(0.001,0.1))"}
    name = studies.default_name("car_prices", "default", default, ["val_rmse"])
    assert re.fullmatch(r"car_prices-default-[0-9a-f]{6}", name)
    assert studies.default_name("car_prices", "default", dict(reversed(default.items())), ["val_rmse"]) == name
    others = [
        studies.default_name("car_prices", "default", _space("model.hidden=choice([32],[64])",
                             "optimizer.lr=tag(log,interval(1e-3,0.1))"), ["val_rmse"]),
        studies.default_name("car_prices", "default", _space("model.hidden=choice([32],[64,32])",
                             "optimizer.lr=interval(1e-3,0.1)"), ["val_rmse"]),
        studies.default_name("car_prices", "default", default, ["val_rmse", "generalization_gap"]),
    ]
    assert len({name, *others}) == 4
    assert studies.default_name("car_prices", None, default, ["val_rmse"]) == "car_prices-" + name.rsplit("-", 1)[1]


@pytest.mark.parametrize("change, line", [
    (("model.hidden=choice([32],[64])", "optimizer.lr=interval(0.001,0.1)"),
     "its trials searched model.hidden=choice([32],[64,32]), this sweep model.hidden=choice([32],[64])"),
    (("model.hidden=choice([32],[64,32])",),
     "its trials searched optimizer.lr=interval(0.001,0.1), this sweep does not"),
    (("model.hidden=choice([32],[64,32])", "optimizer.lr=interval(0.001,0.1)", "train.batch_size=range(16,65,16)"),
     "its trials did not search train.batch_size, this sweep train.batch_size=range(16,65,16)"),
])
def test_a_named_study_resumed_over_another_space_is_refused_before_any_trial(tmp_path, change, line):
    """Optuna would fail every trial with 'CategoricalDistribution does not support dynamic value
    space.' and count it toward n_trials; the sweep stops first, naming the key and both
    distributions."""
    from sweeper.errors import ConfigError

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    first = _space("model.hidden=choice([32],[64,32])", "optimizer.lr=interval(1e-3,0.1)")
    study, _ = studies.create_or_load(storage, "mine", ["minimize"])
    studies.check_space(study, first)  # a new study records its space
    study, _ = studies.create_or_load(storage, "mine", ["minimize"])
    studies.check_space(study, dict(reversed(first.items())))  # the same space resumes
    with pytest.raises(ConfigError) as refused:
        studies.check_space(study, _space(*change))
    assert str(refused.value) == (f"hydra.sweeper.study_name='mine': {line}; leave study_name unset (the default "
                                  f"name follows the space) or name a new study")


def test_a_study_from_before_spaces_were_recorded_is_checked_against_its_trials(tmp_path):
    from sweeper.errors import ConfigError

    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(storage=storage, study_name="old")
    study.ask({"model.hidden": optuna.distributions.CategoricalDistribution(["[32]", "[64,32]"])})
    studies.check_space(study, _space("model.hidden=choice([32],[64,32])"))
    with pytest.raises(ConfigError, match=r"searched model.hidden=choice\(\[32\],\[64,32\]\), "
                                          r"this sweep model.hidden=choice\(\[32\],\[64\]\)"):
        studies.check_space(study, _space("model.hidden=choice([32],[64])"))
