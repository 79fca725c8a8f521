"""The search space: Hydra sweep overrides -> Optuna distributions, suggested define-by-run.

Each entry of ``hydra.sweeper.params`` (and each command-line sweep) is one Hydra override:

============================================  ==============================================
override                                      Optuna distribution
============================================  ==============================================
``key=choice(a,b,c)`` or ``key=a,b,c``        ``CategoricalDistribution`` (lists allowed)
``key=range(start,stop,step)`` (ints)         ``IntDistribution(start, last, step)``
``key=range(...)`` (floats)                   ``CategoricalDistribution`` of its values
``key=interval(low,high)``                    ``FloatDistribution(low, high)``
``key=int(interval(low,high))``               ``IntDistribution(low, high)``
``key=tag(log, interval(low,high))``          log scale (also with ``int(...)``)
``key=value``                                 a fixed override applied to every trial
============================================  ==============================================

Conditional parameters: a key whose dotted prefix is itself swept (``schedule.gamma`` under
``schedule=choice(step,exponential,...)``, any ``group.key`` under a swept config group) is
suggested only when the option chosen for the prefix has that key in its composed config:
``schedule.gamma`` for ``step`` and ``exponential``, never for ``cosine``. Under a fixed prefix
(``schedule=cosine``) a key the option lacks is left out of the search, and the sweeper says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from omegaconf import DictConfig, ListConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from sweeper.errors import ConfigError
from sweeper.overrides import element_str

_ABSENT = object()
_OPTUNA_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Param:
    """One swept key: its Optuna distribution and how a suggested value becomes an override."""

    key: str  # the config key (Optuna's parameter name), e.g. "optimizer.lr" or "schedule"
    override_key: str  # as written on the command line, e.g. "+model.extra" or "schedule"
    distribution: BaseDistribution
    # Categorical values that Optuna cannot store (lists, dicts) are stored as their override text.
    choice_text: dict[Any, str] = field(default_factory=dict)
    parent: str | None = None  # swept key that decides whether this key exists
    fixed_parent: str | None = None  # or, with no swept parent, a fixed key (schedule=cosine)

    def override(self, value: Any) -> str:
        return f"{self.override_key}={self.choice_text.get(value, element_str(value))}"

    def endpoints(self) -> list[Any]:
        """Values that exercise the whole range: every choice, or both ends of an interval."""
        d = self.distribution
        return list(d.choices) if isinstance(d, CategoricalDistribution) else [d.low, d.high]

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return trial.suggest_categorical(self.key, d.choices)
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.key, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.key, d.low, d.high, step=d.step, log=d.log)


@dataclass
class SearchSpace:
    """Swept parameters (parents before their conditional children) and fixed overrides."""

    params: list[Param]
    fixed: list[str]

    def described(self) -> dict[str, str]:
        """Each swept key's distribution in the sweep grammar, e.g. ``{"optimizer.lr":
        "tag(log,interval(0.001,0.1))"}``: what a study records of its space."""
        return {p.key: describe(p.distribution) for p in self.params}

    def numbers(self) -> str:
        """The searched numbers' ranges as JSON, ``{"optimizer.lr": {"low": 0.001, "high": 0.1, "log": true}}``
        (every interval and integer range; choices are left out): the parent run's ``sweeper.space``
        tag, from which the report draws their axes."""
        return json.dumps({p.key: {"low": p.distribution.low, "high": p.distribution.high, "log": p.distribution.log}
                           for p in self.params if not isinstance(p.distribution, CategoricalDistribution)})

    def grid(self) -> dict[str, list]:
        """Every value of every parameter, for Optuna's GridSampler (intervals cannot be gridded)."""
        grid = {}
        for p in self.params:
            d = p.distribution
            if isinstance(d, CategoricalDistribution):
                grid[p.key] = list(d.choices)
            elif isinstance(d, IntDistribution) and not d.log:
                grid[p.key] = list(range(d.low, d.high + 1, d.step))
            else:
                raise ConfigError(f"hydra.sweeper.params.{p.key}: the grid sampler needs choice(...) or "
                                  f"range(...), not an interval")
        return grid

    def suggest(self, trial: optuna.trial.BaseTrial, compose: Callable[[list[str]], DictConfig]) -> list[str]:
        """Suggest this trial's values (define-by-run); return the job's overrides.

        A conditional parameter is suggested only if composing the config with the options chosen
        so far for parents yields its key. ``compose`` sees the same few override lists again and
        again: callers memoise it.
        """
        parents = {p.parent for p in self.params if p.parent is not None}
        chosen: dict[str, str] = {}  # key -> override, in suggestion order
        for p in self.params:
            if p.parent is not None:
                if p.parent not in chosen:
                    continue  # its parent was itself skipped
                # Only the options chosen for parents decide which keys exist: ``compose`` remembers them.
                if not has_key(compose(self.fixed + [o for k, o in chosen.items() if k in parents]), p.key):
                    continue
            chosen[p.key] = p.override(p.suggest(trial))
        return self.fixed + list(chosen.values())


def base_values(space: SearchSpace, base: DictConfig, groups: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The values the space's keys have in ``base`` (the config of its fixed overrides), as Optuna
    parameters for ``Study.enqueue_trial``, and the keys whose base value is not in the space (the
    sampler picks those). ``groups``: the keys that are config groups; a conditional key counts
    only where ``base`` has it."""
    values: dict[str, Any] = {}
    outside: list[str] = []
    for p in space.params:
        if p.key in groups:
            value = OmegaConf.select(base, f"hydra.runtime.choices.{p.key}", default=_ABSENT)
        elif has_key(base, p.key):
            value = OmegaConf.select(base, p.key)
            if isinstance(value, (DictConfig, ListConfig)):
                value = OmegaConf.to_container(value)
        else:
            continue  # a conditional key the base's group option lacks
        d = p.distribution
        if isinstance(d, CategoricalDistribution):
            stored = {p.choice_text.get(c, element_str(c)).replace(" ", ""): c for c in d.choices}
            match = stored.get(element_str(value).replace(" ", ""), _ABSENT) if value is not _ABSENT else _ABSENT
            if match is _ABSENT:
                outside.append(p.key)
            else:
                values[p.key] = match
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and d.low <= value <= d.high:
            values[p.key] = int(value) if isinstance(d, IntDistribution) else float(value)
        else:
            outside.append(p.key)
    return values, outside


def describe(d: BaseDistribution) -> str:
    """``d`` in the sweep grammar: ``choice(relu,tanh)``, ``int(interval(5,30))``,
    ``tag(log,interval(0.001,0.1))``, ``range(16,129,16)``."""
    if isinstance(d, CategoricalDistribution):
        return "choice(" + ",".join(c if isinstance(c, str) else element_str(c) for c in d.choices) + ")"
    if isinstance(d, IntDistribution) and d.step != 1:
        return f"range({d.low},{d.high + 1},{d.step})"
    text = f"int(interval({d.low},{d.high}))" if isinstance(d, IntDistribution) else f"interval({d.low},{d.high})"
    return f"tag(log,{text})" if d.log else text


def has_key(cfg: DictConfig, key: str) -> bool:
    """Whether dotted ``key`` exists in ``cfg`` (a null value counts as present)."""
    return OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False) is not _ABSENT


def _distribution(key: str, override: Override) -> tuple[BaseDistribution, dict[Any, str]]:
    value = override.value()
    where = f"hydra.sweeper.params: {override.input_line}"
    try:
        unknown = sorted(set(getattr(value, "tags", ())) - {"log"})  # Hydra's sweeps all take tags
        if unknown:
            raise ValueError(f"{key}: unknown tag '{unknown[0]}'; allowed: log")
        if isinstance(value, ChoiceSweep):
            stored = [e if e is None or isinstance(e, _OPTUNA_SCALARS) else element_str(e) for e in value.list]
            if not stored:
                raise ValueError("choice() needs at least one value")
            text = {v: element_str(e) for v, e in zip(stored, value.list) if not isinstance(e, _OPTUNA_SCALARS)}
            return CategoricalDistribution(list(dict.fromkeys(stored))), text
        if isinstance(value, RangeSweep):
            values = list(override.sweep_iterator())
            if not values:
                raise ValueError("range() is empty")
            if all(isinstance(v, int) for v in (value.start, value.stop, value.step)) and value.step > 0:
                return IntDistribution(values[0], values[-1], step=value.step), {}
            return CategoricalDistribution(values), {}
        if isinstance(value, IntervalSweep):
            log = "log" in value.tags
            if value.start > value.end:
                raise ValueError(f"low {value.start} > high {value.end}")
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(value.start, value.end, log=log), {}
            return FloatDistribution(float(value.start), float(value.end), log=log), {}
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None
    raise ConfigError(f"{where}: unsupported sweep")


def parse(params: dict[str, Any] | None, arguments: Iterable[str], parser: OverridesParser) -> SearchSpace:
    """Build the search space from ``hydra.sweeper.params`` and the command-line overrides (which
    replace the ``params`` entry of their key)."""
    texts = [f"{k}={element_str(v) if not isinstance(v, str) else v}" for k, v in (params or {}).items()]
    texts += list(arguments)
    try:
        overrides = parser.parse_overrides(texts)
    except Exception as err:  # Hydra's grammar errors carry the offending text
        raise ConfigError(f"hydra.sweeper.params: {str(err).splitlines()[0]}") from None

    by_key: dict[str, Override] = {}
    for override in overrides:
        by_key.pop(override.key_or_group, None)  # later wins, in its new position
        by_key[override.key_or_group] = override

    swept = {key: override for key, override in by_key.items() if override.is_sweep_override()}
    fixed = [f"{o.get_key_element()}={o.get_value_element_as_str()}" for k, o in by_key.items() if k not in swept]

    def prefixes(key: str, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if key.startswith(k + ".")]

    params_out = []
    for key, override in swept.items():
        distribution, text = _distribution(key, override)
        parent = max(prefixes(key, swept), key=len, default=None)
        fixed_parent = None if parent else max(prefixes(key, set(by_key) - set(swept)), key=len, default=None)
        params_out.append(Param(key, override.get_key_element(), distribution, text, parent, fixed_parent))
    # Parents before children, otherwise in the order given: a key's depth is its swept prefixes' count.
    params_out.sort(key=lambda p: len(prefixes(p.key, swept)))
    return SearchSpace(params_out, fixed)
