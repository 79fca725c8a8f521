"""The sweeper's two shortcuts around slow calls give the answers of the slow calls.

- A job's median pruner reads the study's COMPLETE trials from a snapshot instead of re-reading
  the storage at every epoch (``trial_link._CompletedTrials``): its prune/continue answers must
  be Optuna's own ``Trial.should_prune`` answers, epoch by epoch, on a real SQLite study.
- Validating a search space applies a plain key's value to a copy of an already composed config
  instead of composing again (``OptunaSweeperImpl._with_value``): the config, or the error, must
  be what Hydra's compose gives for the same overrides of the project's own ``conf/``.
"""

from __future__ import annotations

import math
import time

import optuna
import pytest
from optuna.trial import TrialState

from sweeper.errors import ConfigError
from sweeper.sweep import trial_link
from sweeper.sweep.registry import make_pruner
from sweeper.sweep.storage import open_storage


def _curve(level: float, epochs: int) -> list[float]:
    return [level + 1.0 / (epoch + 1) for epoch in range(epochs)]


@pytest.fixture
def median_study(tmp_path):
    """A SQLite study with 6 COMPLETE trials of 30 reported epochs (levels 1.0 ... 1.5)."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=url, study_name="s", pruner=make_pruner("median", {}))
    for i in range(6):
        trial = study.ask()
        for epoch, value in enumerate(_curve(1.0 + 0.1 * i, 30)):
            trial.report(value, epoch)
        study.tell(trial, 1.0 + 0.1 * i)
    return url, study


def _running_trial(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    study._storage.set_trial_system_attr(trial._trial_id, trial_link.PRUNER_ATTR, {"name": "median", "kwargs": {}})
    return trial


@pytest.mark.parametrize("level", [0.9, 1.22, 1.27, 2.0])
def test_the_jobs_median_pruner_answers_as_optunas_should_prune_at_every_epoch(median_study, level):
    url, study = median_study
    trial = _running_trial(study)
    link = trial_link.TrialLink(url, "s", trial._trial_id, trial.number, None)
    reference = optuna.trial.Trial(
        optuna.load_study(study_name="s", storage=open_storage(url), pruner=make_pruner("median", {})),
        trial._trial_id,
    )
    ours, optunas = [], []
    for epoch, value in enumerate(_curve(level, 30)):
        ours.append(link.report(epoch, value))
        reference._cached_frozen_trial.intermediate_values[epoch] = value  # what link.report stored
        optunas.append(reference.should_prune())
    assert ours == optunas
    assert link._peers is not None  # the shortcut, not Optuna's own path, answered
    # After the job's flush the stored curve is the reported one: later trials' medians read it.
    link.flush()
    stored = optuna.load_study(study_name="s", storage=url).trials[trial.number].intermediate_values
    assert stored == dict(enumerate(_curve(level, 30)))


def test_reported_values_reach_the_storage_within_save_seconds_and_at_flush(median_study, monkeypatch):
    url, study = median_study
    monkeypatch.setattr(trial_link, "SAVE_SECONDS", 0.5)
    trial = _running_trial(study)
    link = trial_link.TrialLink(url, "s", trial._trial_id, trial.number, None)

    def stored() -> dict:
        return optuna.load_study(study_name="s", storage=url).trials[trial.number].intermediate_values

    link.report(0, 3.0)
    link.report(1, 2.0)
    assert stored() == {}  # kept in the job: no commit per epoch
    time.sleep(0.55)
    link.report(2, 1.5)  # SAVE_SECONDS passed: this report writes all three
    assert stored() == {0: 3.0, 1: 2.0, 2: 1.5}
    link.report(3, 1.25)
    link.flush()
    assert stored() == {0: 3.0, 1: 2.0, 2: 1.5, 3: 1.25}
    link.flush()  # nothing left: writes nothing, fails nothing
    study.tell(trial, state=TrialState.PRUNED)
    assert study.trials[trial.number].intermediate_values == {0: 3.0, 1: 2.0, 2: 1.5, 3: 1.25}


def test_the_answers_cover_both_outcomes(median_study):
    """Levels below and above the median: the comparison above is not all-False or all-True."""
    url, study = median_study
    answers = {}
    for level in (0.9, 2.0):
        trial = _running_trial(study)
        link = trial_link.TrialLink(url, "s", trial._trial_id, trial.number, None)
        answers[level] = any(link.report(epoch, value) for epoch, value in enumerate(_curve(level, 30)))
        study.tell(trial, state=TrialState.FAIL)
    assert answers == {0.9: False, 2.0: True}


def test_trials_completed_by_another_worker_are_seen_after_the_refresh(median_study):
    url, study = median_study
    peers = trial_link._CompletedTrials(optuna.load_study(study_name="s", storage=url), refresh=0.3)
    assert len(peers.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) == 6
    other = study.ask()  # another worker completes one more trial
    study.tell(other, 0.5)
    assert len(peers.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) == 6
    deadline = time.monotonic() + 5
    while len(peers.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) == 6:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert peers.direction == study.direction


def test_other_questions_go_to_the_study_unchanged(median_study):
    url, study = median_study
    peers = trial_link._CompletedTrials(optuna.load_study(study_name="s", storage=url), refresh=math.inf)
    assert len(peers.get_trials(deepcopy=False)) == 6
    study.ask()
    assert len(peers.get_trials(deepcopy=False)) == 7  # not a snapshot: all states were asked


# --- validation: a value applied to a composed config == composing with it ---------------------


@pytest.fixture(scope="module")
def sweeper_impl():
    """The sweeper's implementation set up as Hydra sets it up, on the project's conf/."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import HydraContext

    from sweeper.app import CONFIG_DIR  # registers the config schemas, as `python -m sweeper` does
    from sweeper.sweep.optuna_sweeper import OptunaSweeperImpl

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        impl = OptunaSweeperImpl(validator=None)
        impl.hydra_context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=None)
        impl.config = compose("config", return_hydra_config=True)
        impl._composed = {}
        yield impl


def _task(cfg) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=False) | {"hydra": None}


@pytest.mark.parametrize(
    "context, override",
    [
        ([], "optimizer.lr=0.05"),
        ([], "model.hidden=[32,16]"),
        ([], "train.batch_size=null"),
        ([], "regularization.max_norm=3"),
        (["schedule=step"], "schedule.gamma=0.9"),
        (["schedule=plateau"], "schedule.factor=0.2"),
        (["data=diamonds"], "model.activation=tanh"),
    ],
)
def test_a_value_applied_to_the_composed_context_equals_composing_with_it(sweeper_impl, context, override):
    fixed = ["train.epochs=7"]
    applied = sweeper_impl._with_value(sweeper_impl._compose_once(fixed + context), override, "here")
    composed = sweeper_impl._compose(fixed + context + [override])
    assert _task(applied) == _task(composed)


@pytest.mark.parametrize(
    "override, says",
    [
        ("train.batch_size=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
        ("model.hidden=abc", "model.hidden=abc"),
        ("optimizer.nesterov=maybe", "optimizer.nesterov=maybe"),
    ],
)
def test_a_value_the_schema_rejects_fails_as_composing_it_fails(sweeper_impl, override, says):
    from sweeper.sweep.optuna_sweeper import _composition_message

    with pytest.raises(ConfigError) as applied:
        sweeper_impl._with_value(sweeper_impl._compose_once([]), override, "where")
    with pytest.raises(Exception) as composed:
        sweeper_impl._compose([override])
    assert str(applied.value) == f"where: {_composition_message(composed.value)}"
    assert says in str(applied.value)
    assert "\n" not in str(applied.value)


def test_a_storage_without_transactions_gets_the_values_one_by_one():
    from sweeper.sweep.storage import save_intermediate_values

    study = optuna.create_study()  # in memory: no RDB backend to batch into
    trial = study.ask()
    save_intermediate_values(study._storage, trial._trial_id, {0: 1.0, 1: 0.5})
    assert study.trials[0].intermediate_values == {0: 1.0, 1: 0.5}


def test_values_inserted_in_one_transaction_read_back_as_optuna_stores_them(median_study):
    from sweeper.sweep.storage import save_intermediate_values

    url, study = median_study
    trial = study.ask()
    values = {1: 0.5, 2: math.inf, 3: -math.inf, 4: 0.25}
    save_intermediate_values(open_storage(url), trial._trial_id, values)
    assert optuna.load_study(study_name="s", storage=url).trials[trial.number].intermediate_values == values
    save_intermediate_values(open_storage(url), trial._trial_id, {5: math.nan})
    assert math.isnan(optuna.load_study(study_name="s", storage=url).trials[trial.number].intermediate_values[5])


def test_a_step_stored_before_is_overwritten_as_optunas_own_call_would(median_study):
    from sweeper.sweep.storage import save_intermediate_values

    url, study = median_study
    trial = study.ask()
    trial.report(9.0, 2)
    save_intermediate_values(open_storage(url), trial._trial_id, {1: 3.0, 2: 2.0, 3: 1.0})
    stored = optuna.load_study(study_name="s", storage=url).trials[trial.number].intermediate_values
    assert stored == {1: 3.0, 2: 2.0, 3: 1.0}


def test_a_finished_trials_values_stay_as_they_are(median_study):
    from sweeper.sweep.storage import save_intermediate_values

    url, study = median_study
    trial = study.ask()
    trial.report(1.0, 1)
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        save_intermediate_values(open_storage(url), trial._trial_id, {2: 0.5})
    assert optuna.load_study(study_name="s", storage=url).trials[trial.number].intermediate_values == {1: 1.0}


def test_the_next_job_in_the_process_reuses_the_study_and_sees_the_trial_before_it(median_study):
    url, study = median_study
    first = _running_trial(study)
    link = trial_link.TrialLink(url, "s", first._trial_id, first.number, None)
    for epoch, value in enumerate(_curve(0.9, 30)):
        link.report(epoch, value)
    link.flush()
    study.tell(first, 0.9)

    hits = trial_link._job_study.cache_info().hits
    second = _running_trial(study)
    link = trial_link.TrialLink(url, "s", second._trial_id, second.number, None)
    link.report(0, 5.0)
    assert trial_link._job_study.cache_info().hits == hits + 1
    completed = link._peers.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [t.number for t in completed] == [0, 1, 2, 3, 4, 5, first.number]
    assert completed[-1].intermediate_values == dict(enumerate(_curve(0.9, 30)))


def test_without_a_lock_the_lowest_numbered_trials_asked_together_fit_the_budget(tmp_path):
    """The hand-back rule for databases budget_lock cannot lock (SQLite and PostgreSQL can)."""
    from sweeper.sweep import study as studies
    from sweeper.sweep.storage import budget_lock

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with budget_lock(url, "s") as locked:
        assert locked
    with budget_lock("mysql://u@h/db", "s") as locked:
        assert not locked
    study = optuna.create_study(storage=url, study_name="s")
    for _ in range(3):
        study.tell(study.ask(), 1.0)
    first, second = study.ask(), study.ask()  # two workers asked at the same moment
    assert studies.within_budget(study, first, n_trials=4)
    assert not studies.within_budget(study, second, n_trials=4)
    assert studies.within_budget(study, second, n_trials=5)
