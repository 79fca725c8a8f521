"""Config name -> class lookup shared by every family in ``sweeper.nn``."""
from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def lookup(registry: dict[str, T], name: str, what: str) -> T:
    """Return ``registry[name]``; an unknown name raises ValueError listing the known ones."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {what} {name!r}; choose one of: {known}") from None
