"""A worker's tie to its supervisor: when the supervisor dies (SIGKILL, the OOM killer), its
workers must not serve on, orphaned, holding the port that a restarted engine needs.

Two triggers lead to one graceful stop (in-flight calls finish within the grace period):
the parent's sentinel, a pipe that the kernel closes when the supervisor's process ends (watched
by the worker's event loop; multiprocessing gives every spawned child one), and on Linux
PR_SET_PDEATHSIG, which has the kernel signal the worker itself.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
# Sent by the kernel when the supervisor dies; the worker turns it into a graceful stop.
DEATH_SIGNAL = signal.SIGUSR2


def arm_death_signal() -> bool:
    """Asks the kernel for DEATH_SIGNAL when the parent dies (Linux only). Returns whether it
    is armed. Call first thing in the worker, before any slow start-up work."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(DEATH_SIGNAL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class Lifeline:
    """Stops this worker (as SIGTERM does) once the supervisor is gone."""

    def __init__(self, supervisor_pid: int | None, stop: Callable[[], None] | None = None) -> None:
        self.supervisor_pid = supervisor_pid
        self.gone = False
        # SIGTERM to itself: the engine's own graceful stop (drain within the grace period).
        self._stop = stop or (lambda: os.kill(os.getpid(), signal.SIGTERM))

    def on_gone(self) -> None:
        if self.gone:  # both triggers fire: stop once, or the second would skip the grace
            return
        self.gone = True
        log.error(
            "the supervisor (pid %s) is gone: stopping this orphaned worker", self.supervisor_pid
        )
        self._stop()

    async def watch(self, sentinel: int | None = None) -> None:
        """Until cancelled: calls ``on_gone`` when DEATH_SIGNAL arrives or ``sentinel`` (by
        default the parent process's) becomes readable, that is, closed."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(DEATH_SIGNAL, self.on_gone)
        if sentinel is None:
            parent = multiprocessing.parent_process()
            sentinel = parent.sentinel if parent is not None else None
        if sentinel is None:
            await asyncio.Event().wait()
        closed = loop.create_future()
        loop.add_reader(sentinel, lambda: closed.done() or closed.set_result(None))
        try:
            await closed
        finally:
            loop.remove_reader(sentinel)
        self.on_gone()


def supervisor_alive(supervisor_pid: int) -> bool:
    """The parent died before the death signal was armed: the worker is already orphaned."""
    return os.getppid() == supervisor_pid
