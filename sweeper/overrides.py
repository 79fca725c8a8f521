"""Checks on command-line overrides that Hydra leaves to OmegaConf's lenient conversions.

Shared by a run (``sweeper.app``, on its job's overrides) and by the sweeper's check of the
search space before any trial, so both refuse the same values with the same line.
"""

from __future__ import annotations

from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf

from sweeper.errors import ConfigError


def check_bool_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Refuse a bool key given anything but ``true`` or ``false``.

    OmegaConf turns any integer into a bool (``optimizer.nesterov=3`` would run as true) and
    accepts ``yes``/``on``; Hydra's grammar reads only ``true``/``false`` as bools. Every plain
    ``key=value`` in ``overrides`` whose key is typed ``bool`` in ``cfg`` (the composed config)
    must be one of those, or ConfigError names the key.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf.nodes import BooleanNode

    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_delete() or override.is_sweep_override():
            continue
        parent_key, _, leaf = override.key_or_group.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        node = parent._get_node(leaf) if isinstance(parent, DictConfig) and leaf in parent else None
        if isinstance(node, BooleanNode) and not isinstance(override.value(), bool):
            raise not_bool(override.key_or_group, override.value())


def not_bool(key: str, value: Any) -> ConfigError:
    """The one line for a bool key given ``value``."""
    return ConfigError(f"{key}: {value!r} is not a bool; allowed: true, false")
