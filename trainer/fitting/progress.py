"""Progress of a training run: lines in the log wherever it runs, and a bar on a terminal.

A bar alone left runs under Docker, CI or a pipe silent until the end (100k rows x 500 features:
45 s an epoch, nothing for 5 minutes). The log gets a line ``FIRST_LINE_SECONDS`` into the first
epoch (with the epoch's expected length) or at its end if sooner, then at most every
``LOG_EVERY_SECONDS``, within a long epoch too."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import ExitStack

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 10.0
# The first line comes sooner: a person who started a long fit wants the estimate early.
FIRST_LINE_SECONDS = 2.0


class Progress:
    """Use as a context manager around the epochs; ``enabled=False`` is silent."""

    def __init__(
        self, epochs: int, enabled: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._epochs, self._enabled, self._clock = epochs, enabled, clock
        # disable=None: tqdm draws only on a terminal, so logs (CI, Docker) get no bar spam.
        self._bar = tqdm(
            total=epochs, desc="training", unit="epoch", disable=None if enabled else True
        )
        self._epoch = 0
        self._epoch_start = self._last_line = clock()
        self._interval = FIRST_LINE_SECONDS
        self._stack = ExitStack()

    def __enter__(self) -> Progress:
        if not self._bar.disable:
            # Log lines go through tqdm while the bar is drawn, so they do not break it.
            self._stack.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()
        self._stack.close()

    def start_epoch(self) -> None:
        self._epoch += 1
        self._epoch_start = self._clock()

    def batch(self, rows_done: int, rows_total: int) -> None:
        """Within an epoch: a line with the share done and the epoch's expected length, when
        none was logged for ``LOG_EVERY_SECONDS``."""
        now = self._clock()
        quiet = now - self._last_line < self._interval or rows_done == rows_total
        if not self._enabled or quiet:  # the epoch's own line follows the last batch
            return
        elapsed = now - self._epoch_start
        log.info(
            "epoch %d/%d: %d%% of the training rows, about %s per epoch",
            self._epoch,
            self._epochs,
            100 * rows_done // rows_total,
            _duration(elapsed * rows_total / rows_done),
        )
        self._logged(now)

    def end_epoch(self, train_loss: float, validation_loss: float) -> None:
        now = self._clock()
        self._bar.update(1)
        self._bar.set_postfix(train=f"{train_loss:.4g}", val=f"{validation_loss:.4g}")
        due = self._epoch == 1 or now - self._last_line >= LOG_EVERY_SECONDS
        if not self._enabled or not due:
            return
        seconds = now - self._epoch_start
        log.info(
            "epoch %d/%d: train loss %.4g, validation loss %.4g; %s per epoch, at most %s more "
            "(early stopping may end sooner)",
            self._epoch,
            self._epochs,
            train_loss,
            validation_loss,
            _duration(seconds),
            _duration(seconds * (self._epochs - self._epoch)),
        )
        self._logged(now)

    def _logged(self, now: float) -> None:
        self._last_line, self._interval = now, LOG_EVERY_SECONDS


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
