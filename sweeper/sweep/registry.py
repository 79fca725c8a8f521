"""Config names -> Optuna samplers and pruners (Optuna's own classes, chosen by name)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import optuna

from sweeper.errors import ConfigError

# Where this project's defaults differ from Optuna's, an entry is a functools.partial
# (hydra.sweeper.*_kwargs win). TPE counts a running trial as the worst value so far, so trials
# running at once (n_jobs > 1, other workers) are not offered the same point; one trial at a time
# gets the same suggestions as without it: Optuna 5's default; Optuna 4 (our lowest) did not have it.
SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": functools.partial(optuna.samplers.TPESampler, constant_liar=True),
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
    "grid": optuna.samplers.GridSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}

PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    # The first epochs of SGD say little about where a run ends, so the median pruner waits a few.
    "median": functools.partial(optuna.pruners.MedianPruner, n_warmup_steps=5),
    "hyperband": optuna.pruners.HyperbandPruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
}


def _lookup(registry: dict, kind: str, name: str | None) -> Callable:
    key = "none" if name is None else str(name).lower()
    if key not in registry:
        raise ConfigError(f"hydra.sweeper.{kind}={name!r} is unknown; choose one of: {', '.join(registry)}")
    return registry[key]


def _call(factory: Callable, kind: str, name: str, kwargs: dict[str, Any]) -> Any:
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"hydra.sweeper.{kind}_kwargs for {kind} {name!r}: {err}") from None


def make_sampler(name: str, seed: int | None = None, kwargs: dict[str, Any] | None = None,
                 search_space: dict[str, list] | None = None) -> optuna.samplers.BaseSampler:
    """Build sampler ``name`` with ``kwargs``; ``seed`` is passed to every sampler that takes one;
    ``grid`` needs ``search_space``, each parameter's list of values."""
    factory = _lookup(SAMPLERS, "sampler", name)
    if factory is optuna.samplers.CmaEsSampler:
        try:
            import cmaes  # noqa: F401  (Optuna imports it only at the first relative sample)
        except ImportError:
            raise ConfigError("hydra.sweeper.sampler=cmaes needs the cmaes package: pip install cmaes") from None
    kwargs = dict(kwargs or {})
    if seed is not None and "seed" in inspect.signature(factory).parameters:
        kwargs.setdefault("seed", seed)
    if factory is optuna.samplers.GridSampler:
        kwargs.setdefault("search_space", search_space or {})
    return _call(factory, "sampler", name, kwargs)


def make_pruner(name: str | None, kwargs: dict[str, Any] | None = None) -> optuna.pruners.BasePruner:
    """Build pruner ``name`` (``none`` or null = never prune) with ``kwargs``."""
    return _call(_lookup(PRUNERS, "pruner", name), "pruner", str(name), dict(kwargs or {}))
