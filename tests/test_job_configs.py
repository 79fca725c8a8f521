"""Job configs checked before the first trial, and how a job reaches its trial.

- Checking a space sets a plain key's value on a copy of an already composed config instead of
  composing again (``JobConfigs._with_value``): the config, or the error, must be what Hydra's
  compose gives for the same overrides of the project's own ``conf/``.
- A job reports through an ``optuna.Trial`` on the shared storage (``TrialLink``): its values
  land in the study, and its pruner stops a trial that is worse than its peers.
"""

from __future__ import annotations

import optuna
import pytest

from sweeper import stop
from sweeper.errors import ConfigError
from sweeper.sweep.settings import Pruner
from sweeper.sweep import trial_link
from sweeper.composer import composition_message
from sweeper.sweep.storage import open_storage

from .stores import load_study


@pytest.fixture(scope="module")
def jobs():
    """The sweep's job configs set up as Hydra sets them up, on the project's conf/."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import HydraContext

    from sweeper.app import CONFIG_DIR  # registers the config schemas, as `python -m sweeper` does
    from sweeper.sweep.job_configs import JobConfigs

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        context = HydraContext(config_loader=GlobalHydra.instance().config_loader(), callbacks=None)
        yield JobConfigs(context, compose("config", return_hydra_config=True), validator=None)


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
        ([], "++train.new_key=3"),
        (["schedule=step"], "schedule.gamma=0.9"),
        (["schedule=plateau"], "schedule.factor=0.2"),
        (["data=diamonds"], "model.activation=tanh"),
    ],
)
def test_a_value_set_on_the_composed_context_equals_composing_with_it(jobs, context, override):
    fixed = ["train.epochs=7"]
    applied = jobs._with_value(jobs.compose_once(fixed + context), override, "here")
    composed = jobs.compose(fixed + context + [override])
    assert _task(applied) == _task(composed)


@pytest.mark.parametrize(
    "override, says",
    [
        ("train.batch_size=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
        ("model.hidden=abc", "model.hidden=abc"),
        ("optimizer.nesterov=maybe", "optimizer.nesterov=maybe"),
        ("train.nope=1", "nope"),
        ("+train.epochs=3", "train.epochs"),
    ],
)
def test_a_value_the_schema_rejects_fails_as_composing_it_fails(jobs, override, says):
    with pytest.raises(ConfigError) as applied:
        jobs._with_value(jobs.compose_once([]), override, "where")
    with pytest.raises(Exception) as composed:
        jobs.compose([override])
    assert str(applied.value) == f"where: {composition_message(composed.value)}"
    assert says in str(applied.value)
    assert "\n" not in str(applied.value)


def test_a_composition_error_is_one_line_of_facts(jobs):
    with pytest.raises(Exception) as caught:
        jobs.compose(["train.batch_size=abc"])
    message = composition_message(caught.value)
    assert "\n" not in message and "full_key" not in message and "could not be converted" in message


# --- the job's trial --------------------------------------------------------------------------


def _curve(level: float, epochs: int) -> list[float]:
    return [level + 1.0 / (epoch + 1) for epoch in range(epochs)]


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_a_job_reports_through_its_trial_and_the_median_pruner_stops_a_worse_one(tmp_path, kind):
    url = str(tmp_path / "optuna.log") if kind == "journal" else f"sqlite:///{tmp_path / 'optuna.db'}"
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    for i in range(6):  # six finished peers with levels 1.0 ... 1.5
        trial = study.ask()
        for epoch, value in enumerate(_curve(1.0 + 0.1 * i, 30)):
            trial.report(value, epoch)
        study.tell(trial, 1.0 + 0.1 * i)

    def run(level: float, pruner: Pruner) -> list[bool]:
        trial = study.ask()
        trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), trial.number)
        link = trial_link.TrialLink(url, "s", trial_id, trial.number, None, pruner.text())
        answers = [link.report(epoch, value) for epoch, value in enumerate(_curve(level, 30))]
        study.tell(trial, level)
        return answers

    median = Pruner("median", {"n_warmup_steps": 5})
    worse = run(2.0, median)
    assert worse == [False] * 5 + [True] * 25  # pruned from the first step after the warm-up
    assert not any(run(0.9, median))  # better than every peer: never
    assert not any(run(2.0, Pruner("none", {})))
    stored = load_study("s", url).trials[6]
    assert stored.intermediate_values == dict(enumerate(_curve(2.0, 30)))  # every epoch, as reported


def test_budget_lock_holds_a_file_lock_beside_a_file_storage_and_none_for_other_databases(tmp_path):
    from sweeper.sweep import study as studies
    from sweeper.sweep.storage import budget_lock

    for url in (str(tmp_path / "optuna.log"), f"sqlite:///{tmp_path / 'optuna.db'}"):
        with budget_lock(url, "s") as locked:
            assert locked
    with budget_lock("mysql://u@h/db", "s") as locked:
        assert not locked
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'optuna.db'}", study_name="s")
    for _ in range(3):
        study.tell(study.ask(), 1.0)
    first, second = study.ask(), study.ask()  # two workers asked at the same moment, without a lock
    assert studies.within_budget(study, first, n_trials=4)
    assert not studies.within_budget(study, second, n_trials=4)
    assert studies.within_budget(study, second, n_trials=5)


def test_a_stop_requested_while_the_signal_was_dropped_ends_the_trial_at_its_next_report(tmp_path, monkeypatch):
    """A SLURM job's SIGTERM raises where it lands; landing in a garbage-collection callback it
    is printed and dropped, so the job's next report raises it (the trial ends interrupted)."""
    url = str(tmp_path / "optuna.log")
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    trial = study.ask()
    link = trial_link.TrialLink(url, "s", trial._trial_id, trial.number, None)
    assert link.report(1, 1.0) is False
    monkeypatch.setattr(stop, "_reason", None)
    stop.request("its SLURM job got SIGTERM")
    with pytest.raises(KeyboardInterrupt, match="its SLURM job got SIGTERM"):
        link.report(2, 0.5)
    assert load_study("s", url).trials[0].intermediate_values == {1: 1.0}


#: A trial's overrides as the sweeper writes them: fixed ones, suggested values (group options
#: among them), and the identity the job reads from ``hydra.job.env_set``.
IDENTITY = trial_link.overrides_for("/tmp/x/optuna.log", "car_prices", 7, 6, "0123abcd")


@pytest.mark.parametrize(
    "overrides",
    [
        ["train.epochs=7"],
        ["train.epochs=7", "optimizer.lr=0.0123", "model.hidden=[32,16]", "model.activation=tanh", *IDENTITY],
        ["schedule=step", "schedule.gamma=0.5", "optimizer.momentum=0.9", "train.batch_size=null", *IDENTITY],
        ["optimizer.lr=0.3", "schedule=plateau", "schedule.factor=0.2", "data=diamonds", *IDENTITY],
        ["++train.new_key=3", "regularization.max_norm=3", "+hydra.job.env_set.EXTRA='a b'"],
    ],
)
def test_a_job_config_built_from_the_cached_composition_equals_hydras_compose(jobs, overrides):
    from omegaconf import OmegaConf

    built, composed = jobs.job_config(overrides), jobs.compose(overrides)
    assert OmegaConf.to_container(built, resolve=False) == OmegaConf.to_container(composed, resolve=False)
    assert OmegaConf.to_yaml(built) == OmegaConf.to_yaml(composed)
    assert OmegaConf.is_struct(built) and not OmegaConf.is_readonly(built.hydra)
    assert built.hydra.job.override_dirname == composed.hydra.job.override_dirname != ""
    assert list(built.hydra.overrides.task) == [o for o in overrides if not o.lstrip("+").startswith("hydra.")]


def test_a_trials_job_config_reuses_the_compositions_of_the_check_and_equals_hydras_compose(jobs, monkeypatch):
    """A trial's overrides start with the space's fixed ones: its config is built on what the
    space's check composed for its group option, with no compose of its own (trial 0 waited
    ~0.2 s for one), by the sweeper and by its launcher alike (another Composer of the same
    sweep config: they share the compositions)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import HydraContext
    from omegaconf import OmegaConf

    from sweeper.composer import Composer
    from sweeper.sweep import space as search_space

    monkeypatch.setattr(jobs._cache, "fixed", [])  # the module's other tests see no checked space
    params = {"schedule": "choice(constant,step)", "schedule.gamma": "interval(0.5,0.9)",
              "optimizer.lr": "interval(1e-3,0.1)"}
    space = jobs.check(search_space.parse(params, ["train.epochs=7", "data=diamonds"], OverridesParser.create()))
    trials = [[*space.fixed, "schedule=step", "schedule.gamma=0.7", "optimizer.lr=0.01", *IDENTITY],
              [*space.fixed, "schedule=constant", "optimizer.lr=0.02", *IDENTITY]]
    composed = [jobs.compose(overrides) for overrides in trials]
    launchers = Composer(HydraContext(config_loader=jobs._loader, callbacks=None), jobs._config)
    for composer in (jobs, launchers):
        monkeypatch.setattr(composer, "compose", lambda overrides: pytest.fail(f"composed again for {overrides}"))
        for overrides, want in zip(trials, composed):
            built = composer.job_config(overrides)
            assert OmegaConf.to_yaml(built) == OmegaConf.to_yaml(want)
            assert built.hydra.job.override_dirname == want.hydra.job.override_dirname


def test_a_job_config_is_a_copy_a_job_may_change(jobs):
    first = jobs.job_config(["optimizer.lr=0.5"])
    first.optimizer.lr = 9.0
    assert jobs.job_config(["train.epochs=3"]).optimizer.lr != 9.0


@pytest.mark.parametrize("params, arguments, error", [
    ({"schedule": "choice(constant,step)", "schedule.gamma": "interval(0.5,0.9)", "optimizer.lr": "interval(1e-3,0.1)"},
     [], None),
    ({"schedule.gamma": "interval(0.5,0.9)", "schedule.decay": "interval(0.01,0.1)"}, ["schedule=step"], None),
    ({"train.batch_size": "choice(16,abc)"}, [], "could not be converted to Integer"),
    ({"model.nope": "choice(1,2)"}, [], "unknown key 'model.nope'"),
])
def test_the_check_in_a_forked_process_gives_what_the_check_here_gives(jobs, params, arguments, error, caplog,
                                                                      monkeypatch):
    """The space check run beside the sweep's start (``check_beside``, in a forked process) keeps the same
    space, says the same lines, fails with the same error, and brings the compositions it made
    back (the trials reuse them)."""
    import logging

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeper.launcher.processes import ForkedCall, fork_context
    from sweeper.sweep import space as search_space

    assert fork_context() is not None, "the check would run here: this test would compare it with itself"
    parser = OverridesParser.create()
    space = search_space.parse(params, arguments, parser)
    outcomes = []
    here = jobs.check

    def forked(space):
        # A process that died would be replaced by the check here: that must not happen.
        monkeypatch.setattr(jobs, "check", lambda _: pytest.fail("the forked check fell back to the check here"))
        return jobs.check_beside(space, lambda fn, *args: ForkedCall(fork_context(), fn, args))()

    for check in (here, forked):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sweeper"):
            try:
                checked = check(space)
            except ConfigError as err:
                outcomes.append(("error", str(err)))
                continue
        outcomes.append(([p.key for p in checked.params], checked.fixed, [r.getMessage() for r in caplog.records],
                         sorted(map(str, jobs._composed))))
    assert outcomes[0] == outcomes[1]
    if error:
        assert outcomes[0][0] == "error" and error in outcomes[0][1]
    else:
        assert outcomes[0][3], "the check composed nothing"
    if arguments:
        assert outcomes[0][2] == ["schedule.decay is not searched: schedule=step has no such key"]
