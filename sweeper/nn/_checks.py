"""How ``sweeper.nn`` and ``sweeper.train`` refuse a number out of range: one ``RangeError``
naming the argument. Its parts are attributes, so a caller with names of its own
(``sweeper.config.validate`` and its config keys) says the same in its words without checking
the range again."""
from __future__ import annotations

import math
import numbers
from typing import Callable


class RangeError(ValueError):
    """``<argument> must be [null or ]<allowed>, got <value>``: ``gamma must be in (0, 1], got 1.5``.

    ``allowed`` is the range alone (``"in (0, 1]"``, ``"> 0"``); ``none_ok`` says None is
    allowed too; ``message`` replaces the sentence when the argument needs its own.
    """

    def __init__(self, argument: str, value: object, allowed: str, none_ok: bool = False,
                 message: str | None = None) -> None:
        super().__init__(message or f"{argument} must be {'null or ' if none_ok else ''}{allowed}, got {value}")
        self.argument, self.value, self.allowed, self.none_ok = argument, value, allowed, none_ok


def check_range(argument: str, value: object, ok: Callable[[float], bool], allowed: str,
                none_ok: bool = False) -> None:
    """RangeError unless ``value`` is a finite real number (not a bool) for which ``ok`` holds,
    or None when ``none_ok``."""
    if value is None and none_ok:
        return
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (real and ok(value)):
        raise RangeError(argument, value, allowed, none_ok)
