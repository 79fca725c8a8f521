"""Every learning-rate schedule against its closed form."""
import math

import pytest

from sweeper.nn import SCHEDULES, make_schedule, schedule_keys


@pytest.mark.parametrize(
    "name,keys,expected",
    [
        ("constant", {}, {0: 0.1, 7: 0.1, 500: 0.1}),
        ("step", {"step_size": 10, "gamma": 0.5}, {0: 0.1, 9: 0.1, 10: 0.05, 25: 0.025}),
        ("exponential", {"gamma": 0.9}, {0: 0.1, 1: 0.09, 10: 0.1 * 0.9**10}),
        ("inverse_time", {"decay": 0.5}, {0: 0.1, 2: 0.05, 8: 0.02}),
        ("cosine", {"period": 10, "min_lr": 0.01},
         {0: 0.1, 5: 0.055, 10: 0.01, 30: 0.01, 3: 0.01 + 0.045 * (1 + math.cos(0.3 * math.pi))}),
        ("cosine", {"period": 10, "warm_restarts": True, "period_mult": 2.0},
         {0: 0.1, 5: 0.05, 10: 0.1, 20: 0.05, 30: 0.1, 29: 0.05 * (1 + math.cos(math.pi * 19 / 20))}),
        ("warmup_cosine", {"warmup": 4, "period": 10},
         {0: 0.025, 1: 0.05, 3: 0.1, 4: 0.1, 9: 0.05, 14: 0.0, 40: 0.0}),
        ("plateau", {}, {0: 0.1, 100: 0.1}),
    ],
)
def test_schedule_matches_closed_form(name, keys, expected):
    schedule = make_schedule(name, 0.1, **keys)
    for t, lr in expected.items():
        assert schedule.learning_rate(t) == pytest.approx(lr, abs=1e-15), (name, t)


def test_plateau_reacts_to_a_scripted_loss_sequence_as_documented():
    schedule = make_schedule("plateau", 1.0, factor=0.5, patience=2, min_delta=0.1, min_lr=0.2)
    losses = [1.0, 0.8, 0.75, 0.72, 0.5, 0.5, 0.5, 0.45, 0.45, 0.45, 0.45, 0.45, 0.45]
    # epoch:   1    2    3     4     5    6    7    8     9    10    11    12    13
    # 0.75 and 0.72 are within min_delta of 0.8 -> two bad epochs -> halve after epoch 4.
    # 0.5 improves; epochs 6, 7 bad -> halve after 7; 8, 9 bad -> 0.125 clipped to min_lr 0.2.
    rates = []
    for t, loss in enumerate(losses):
        rates.append(schedule.learning_rate(t))
        schedule.observe(loss)
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]


def test_every_registered_schedule_is_built_by_name_with_its_own_keys():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "inverse_time", "cosine",
                              "warmup_cosine", "plateau"}
    assert schedule_keys("step") == ["step_size", "gamma"]
    assert schedule_keys("constant") == []


@pytest.mark.parametrize(
    "name,keys,needle",
    [
        ("linear", {}, "unknown schedule 'linear'; choose one of: constant, cosine, exponential"),
        ("step", {"gama": 0.5}, "schedule 'step' has no key 'gama'; its keys are: step_size, gamma"),
        ("step", {"gamma": 1.5}, "gamma must be in (0, 1], got 1.5"),
        ("plateau", {"factor": 1.0}, "factor must be in (0, 1), got 1.0"),
        ("cosine", {"min_lr": 0.5}, "min_lr must be in [0, lr], got 0.5"),
    ],
)
def test_bad_schedule_arguments_raise_one_clear_line(name, keys, needle):
    with pytest.raises(ValueError, match=None) as err:
        make_schedule(name, 0.1, **keys)
    assert needle in str(err.value)
