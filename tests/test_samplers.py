"""The samplers the sweeper builds by name: Optuna's own, with this project's defaults."""

from __future__ import annotations

import optuna
import pytest

from sweeper.errors import ConfigError
from sweeper.sweep.registry import make_sampler

X = optuna.distributions.FloatDistribution(-5.0, 5.0)


def _suggestions(sampler: optuna.samplers.BaseSampler, in_flight: int) -> list[float]:
    """12 trials told one at a time, then ``in_flight`` asked together (none told)."""
    study = optuna.create_study(sampler=sampler)
    for _ in range(12):
        trial = study.ask({"x": X})
        study.tell(trial, (trial.params["x"] - 1.0) ** 2)
    return [study.ask({"x": X}).params["x"] for _ in range(in_flight)]


def test_tpe_counts_running_trials_so_trials_asked_together_get_optunas_constant_liar_suggestions():
    ours = _suggestions(make_sampler("tpe", seed=3), in_flight=4)
    assert ours == _suggestions(optuna.samplers.TPESampler(seed=3, constant_liar=True), in_flight=4)
    assert ours != _suggestions(optuna.samplers.TPESampler(seed=3, constant_liar=False), in_flight=4)


def test_one_trial_at_a_time_suggests_exactly_what_plain_tpe_does():
    """Reproducibility per seed is unchanged for n_jobs=1: no trial is running at an ask."""
    assert _suggestions(make_sampler("tpe", seed=3), in_flight=1) == _suggestions(
        optuna.samplers.TPESampler(seed=3, constant_liar=False), in_flight=1)


def test_a_users_sampler_kwargs_win_over_the_projects_defaults():
    plain = _suggestions(make_sampler("tpe", seed=3, kwargs={"constant_liar": False}), in_flight=4)
    assert plain == _suggestions(optuna.samplers.TPESampler(seed=3, constant_liar=False), in_flight=4)
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.sampler_kwargs for sampler 'tpe': "):
        make_sampler("tpe", kwargs={"nope": 1})
