"""Learning-rate schedules, queried once per epoch.

``learning_rate(t)`` gives the rate for the epoch about to run, where t is the number of
completed epochs (0 for the first). ``observe(loss)`` is called after each epoch with the
monitored loss; only ``Plateau`` uses it.
"""
from __future__ import annotations

import inspect
import math

from ._checks import check_range
from ._registry import lookup


class Schedule:
    """Base class. ``lr`` is the initial rate η₀."""

    name = "base"

    def __init__(self, lr: float) -> None:
        check_range("lr", lr, lambda v: v > 0, "> 0")
        self.lr = float(lr)

    def learning_rate(self, t: int) -> float:
        raise NotImplementedError

    def observe(self, loss: float) -> None:
        """Hook called with the monitored loss at the end of each epoch."""


class Constant(Schedule):
    """η(t) = η₀."""

    name = "constant"

    def learning_rate(self, t: int) -> float:
        return self.lr


class Step(Schedule):
    """η(t) = η₀ · γ^⌊t / step_size⌋: multiply by γ every ``step_size`` epochs."""

    name = "step"

    def __init__(self, lr: float, step_size: int = 30, gamma: float = 0.5) -> None:
        super().__init__(lr)
        check_range("step_size", step_size, lambda v: v >= 1, ">= 1")
        check_range("gamma", gamma, lambda v: 0 < v <= 1, "in (0, 1]")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def learning_rate(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.step_size)


class Exponential(Schedule):
    """η(t) = η₀ · γ^t."""

    name = "exponential"

    def __init__(self, lr: float, gamma: float = 0.98) -> None:
        super().__init__(lr)
        check_range("gamma", gamma, lambda v: 0 < v <= 1, "in (0, 1]")
        self.gamma = float(gamma)

    def learning_rate(self, t: int) -> float:
        return self.lr * self.gamma**t


class InverseTime(Schedule):
    """η(t) = η₀ / (1 + k·t)."""

    name = "inverse_time"

    def __init__(self, lr: float, decay: float = 0.01) -> None:
        super().__init__(lr)
        check_range("decay", decay, lambda v: v >= 0, ">= 0")
        self.decay = float(decay)

    def learning_rate(self, t: int) -> float:
        return self.lr / (1.0 + self.decay * t)


class Cosine(Schedule):
    """η(t) = η_min + ½(η₀ − η_min)(1 + cos(π·t/T)) for t ≤ T, then η_min.

    With ``warm_restarts`` (SGDR) the cosine restarts at η₀ after each period, and each
    period is ``period_mult`` times the previous one: T, T·r, T·r², …
    """

    name = "cosine"

    def __init__(
        self,
        lr: float,
        period: int = 100,
        min_lr: float = 0.0,
        warm_restarts: bool = False,
        period_mult: float = 1.0,
    ) -> None:
        super().__init__(lr)
        check_range("period", period, lambda v: v >= 1, ">= 1")
        check_range("min_lr", min_lr, lambda v: 0 <= v <= lr, "in [0, lr]")
        check_range("period_mult", period_mult, lambda v: v >= 1, ">= 1")
        self.period, self.min_lr = int(period), float(min_lr)
        self.warm_restarts, self.period_mult = bool(warm_restarts), float(period_mult)

    def learning_rate(self, t: int) -> float:
        t_cur, period = float(t), float(self.period)
        if self.warm_restarts:
            while t_cur >= period:
                t_cur -= period
                period *= self.period_mult
        else:
            t_cur = min(t_cur, period)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * t_cur / period))


class WarmupCosine(Cosine):
    """Linear warm-up η(t) = η₀·(t+1)/w for t < w, then ``Cosine`` over t − w."""

    name = "warmup_cosine"

    def __init__(
        self, lr: float, warmup: int = 5, period: int = 100, min_lr: float = 0.0
    ) -> None:
        super().__init__(lr, period=period, min_lr=min_lr)
        check_range("warmup", warmup, lambda v: v >= 0, ">= 0")
        self.warmup = int(warmup)

    def learning_rate(self, t: int) -> float:
        if t < self.warmup:
            return self.lr * (t + 1) / self.warmup
        return super().learning_rate(t - self.warmup)


class Plateau(Schedule):
    """Multiply η by ``factor`` when the monitored loss has not improved for ``patience`` epochs.

    An epoch improves when loss < best − min_delta. After ``patience`` consecutive epochs
    without improvement η ← max(η·factor, min_lr) and the count starts again.
    """

    name = "plateau"

    def __init__(
        self,
        lr: float,
        factor: float = 0.5,
        patience: int = 10,
        min_delta: float = 0.0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__(lr)
        check_range("factor", factor, lambda v: 0 < v < 1, "in (0, 1)")
        check_range("patience", patience, lambda v: v >= 1, ">= 1")
        check_range("min_delta", min_delta, lambda v: v >= 0, ">= 0")
        check_range("min_lr", min_lr, lambda v: 0 <= v <= lr, "in [0, lr]")
        self.factor, self.patience = float(factor), int(patience)
        self.min_delta, self.min_lr = float(min_delta), float(min_lr)
        self.current = self.lr
        self.best = math.inf
        self.bad_epochs = 0

    def learning_rate(self, t: int) -> float:
        return self.current

    def observe(self, loss: float) -> None:
        if loss < self.best - self.min_delta:
            self.best, self.bad_epochs = loss, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.current = max(self.current * self.factor, self.min_lr)
            self.bad_epochs = 0


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (Constant, Step, Exponential, InverseTime, Cosine, WarmupCosine, Plateau)
}


def schedule_keys(name: str) -> list[str]:
    """The keyword arguments schedule ``name`` accepts besides ``lr``."""
    params = inspect.signature(lookup(SCHEDULES, name, "schedule")).parameters
    return [key for key in params if key != "lr"]


def make_schedule(name: str, lr: float, **keys: float) -> Schedule:
    """Build schedule ``name`` with initial rate ``lr`` and its own keys.

    An unknown name or key raises ValueError listing the allowed ones; a value out of its range,
    a RangeError naming its argument (``lr`` too).
    """
    cls = lookup(SCHEDULES, name, "schedule")
    unknown = sorted(set(keys) - set(schedule_keys(name)))
    if unknown:
        raise ValueError(
            f"schedule {name!r} has no key {unknown[0]!r}; "
            f"its keys are: {', '.join(schedule_keys(name)) or '(none)'}"
        )
    return cls(lr, **keys)
