"""What a user sees while a network trains: its epochs, so long work is never silent.

A trainer callback (``sweeper.train.fit``'s ``callbacks``). On a terminal a single run shows a
live bar (tqdm: epoch, train and validation loss, elapsed time and ETA) that is gone when the
run ends, so the final table stays as it was; elsewhere (a pipe, a log file, a sweep's trial)
it writes one line every few seconds, and only once the work has run a few seconds, so short
runs and the quiet sweep print nothing more::

    [10:42:07] trial 12: epoch 140/300  train_loss 0.0341  val_loss 0.0413  00:21 elapsed  ETA 00:24

The ETA assumes every configured epoch runs; early stopping may end sooner.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from tqdm import tqdm

clock = tqdm.format_interval  # seconds -> "00:21", "1:02:03"


class Progress:
    """Shows the epochs of one training run on ``stream``; call :meth:`close` when it ends.

    ``live``: a tqdm bar redrawn in place (a terminal); otherwise a line every ``every`` seconds
    once ``after`` seconds have passed. ``label`` starts each line (e.g. ``trial 12``).
    """

    def __init__(self, epochs: int, stream: TextIO, *, live: bool, label: str = "",
                 after: float = 5.0, every: float = 10.0) -> None:
        self.epochs = epochs
        self.stream = stream
        self.label = f"{label}: " if label else ""
        self.every = every
        self.started = time.monotonic()
        self.next_line = self.started + after
        self.bar = None
        if live:
            self.bar = tqdm(total=epochs, desc=label or "training", unit="epoch", file=stream, leave=False,
                            dynamic_ncols=True)

    def __call__(self, log: Any) -> bool:
        """After each epoch (``sweeper.train.EpochLog``); never asks to stop."""
        losses = "  ".join(f"{name}_loss {log.losses[name]:.4g}" for name in ("train", "val") if name in log.losses)
        if self.bar is not None:
            self.bar.set_postfix_str(losses, refresh=False)
            self.bar.update(1)
            return False
        now = time.monotonic()
        if now >= self.next_line:
            self.next_line = now + self.every
            elapsed = now - self.started
            eta = elapsed / log.epoch * (self.epochs - log.epoch)
            stamp = time.strftime("%H:%M:%S")
            print(f"[{stamp}] {self.label}epoch {log.epoch}/{self.epochs}  {losses}  {clock(elapsed)} elapsed  "
                  f"ETA {clock(eta)}", file=self.stream, flush=True)
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
