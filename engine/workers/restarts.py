"""The supervisor's loop: start the workers, pass signals on, and start a worker again when one
dies, within a budget.

A worker that dies (a crash, the OOM killer, SIGKILL) is logged as an error and replaced, so the
engine keeps all its workers; too many deaths within a window mean something is wrong that a
restart in place will not fix (a broken model on disk, a host out of memory), and the whole engine
stops with exit 1 for the orchestrator to deal with.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# How a worker ends when a stop signal reached it before it could install its handlers.
STOPPED_BY_SIGNAL = (0, -signal.SIGTERM, -signal.SIGINT)


class RestartBudget:
    """Allows at most ``limit`` restarts within any ``window`` seconds."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._restarts: deque[float] = deque()

    def allow(self) -> bool:
        """Whether one more restart fits; if it does, it is counted."""
        now = self._clock()
        while self._restarts and now - self._restarts[0] >= self.window:
            self._restarts.popleft()
        if len(self._restarts) >= self.limit:
            return False
        self._restarts.append(now)
        return True


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with {code}"


class Supervisor:
    """Runs ``count`` workers made by ``start(index)`` until a stop signal; ``on_death(pid)`` is
    called for every worker process that ended (to retire its metrics files)."""

    def __init__(
        self,
        start: Callable[[int], BaseProcess],
        count: int,
        budget: RestartBudget,
        on_death: Callable[[int], None] = lambda pid: None,
    ) -> None:
        self._start = start
        self._count = count
        self._budget = budget
        self._on_death = on_death
        self.workers: dict[int, BaseProcess] = {}
        self._stop_signals: list[int] = []
        self._signalled: set[int] = set()
        self._gave_up = False

    @property
    def stopping(self) -> bool:
        return bool(self._stop_signals) or self._gave_up

    def run(self) -> int:
        """Returns the engine's exit code: 0 after a clean stop, 1 when a worker failed."""
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        for index in range(self._count):
            self.workers[index] = self._start(index)
            self._catch_up(self.workers[index])
        while True:
            if not self.stopping:
                self._replace_dead()
            alive = [w for w in self.workers.values() if w.is_alive()]
            if not alive:
                break
            wait([w.sentinel for w in alive], timeout=1.0)
        for worker in self.workers.values():
            self._on_death(worker.pid)
        return self._exit_code()

    def _exit_code(self) -> int:
        if self._gave_up:
            return 1
        return 0 if all(w.exitcode in STOPPED_BY_SIGNAL for w in self.workers.values()) else 1

    def _forward(self, sig: int, frame) -> None:
        if sig != signal.SIGHUP:
            self._stop_signals.append(sig)
        for worker in list(self.workers.values()):
            self._send(worker, sig)

    def _send(self, worker: BaseProcess, sig: int) -> None:
        if worker.is_alive() and worker.pid:
            if sig != signal.SIGHUP:
                self._signalled.add(worker.pid)
            os.kill(worker.pid, sig)

    def _replace_dead(self) -> None:
        for index, worker in list(self.workers.items()):
            if worker.exitcode is None:
                continue
            self._on_death(worker.pid)
            if not self._budget.allow():
                log.error(
                    "worker-%d (pid %d) %s: %d worker deaths within %gs, more than the restart "
                    "limit; stopping the engine (exit 1) so it can be restarted whole",
                    index,
                    worker.pid,
                    describe_exit(worker.exitcode),
                    self._budget.limit + 1,
                    self._budget.window,
                )
                self._gave_up = True
                for other in self.workers.values():
                    self._send(other, signal.SIGTERM)
                return
            log.error(
                "worker-%d (pid %d) %s; starting it again",
                index,
                worker.pid,
                describe_exit(worker.exitcode),
            )
            self.workers[index] = self._start(index)
            self._catch_up(self.workers[index])

    def _catch_up(self, worker: BaseProcess) -> None:
        """A stop signal that came while ``worker`` was being started passed it by: send it."""
        if self._stop_signals and worker.pid not in self._signalled:
            self._send(worker, self._stop_signals[0])
