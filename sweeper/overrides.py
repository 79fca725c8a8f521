"""Checks on command-line overrides that Hydra leaves to OmegaConf's lenient conversions.

Shared by a run (``sweeper.app``, on its job's overrides) and by the sweeper's check of the
search space before any trial, so both refuse the same values with the same line.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Quote, QuotedString
from omegaconf import DictConfig, OmegaConf

from sweeper.errors import ConfigError


def check_bool_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Refuse a bool key given anything but ``true`` or ``false``.

    OmegaConf turns any integer into a bool (``optimizer.nesterov=3`` would run as true) and
    accepts ``yes``/``on``; Hydra's grammar reads only ``true``/``false`` as bools. Every plain
    ``key=value`` in ``overrides`` whose key is typed ``bool`` in ``cfg`` (the composed config:
    only a node typed bool turns a value that is not a bool into one) must be one of those, or
    ConfigError names the key.
    """
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_delete() or override.is_sweep_override():
            continue
        composed = OmegaConf.select(cfg, override.key_or_group, default=None, throw_on_resolution_failure=False)
        if isinstance(composed, bool) and not isinstance(override.value(), bool):
            raise not_bool(override.key_or_group, override.value())


def not_bool(key: str, value: Any) -> ConfigError:
    """The one line for a bool key given ``value``."""
    return ConfigError(f"{key}: {value!r} is not a bool; allowed: true, false")


def quote(value: str) -> str:
    """Quote ``value`` for Hydra's override grammar (any URL, password or path survives)."""
    return QuotedString(text=value, quote=Quote.single).with_quotes()


#: A string Hydra's grammar reads as itself, unquoted (and not as a bool, null or number).
_PLAIN = re.compile(r"[A-Za-z_][\w\-./+@]*")
_KEYWORDS = {"true", "false", "null", "inf", "nan"}


def element_str(value: Any) -> str:
    """``value`` written in Hydra's override grammar (``[64,32]``, ``true``, ``'a b'``): what
    parsing it gives back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(element_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{element_str(k)}:{element_str(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _KEYWORDS:
        return text
    return quote(text)
