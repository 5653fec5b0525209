"""Several ScoreStreams at once over one channel, so a producer spreads its rows over engine
replicas (``--streams N`` with ``--engine-target`` and the round_robin policy).

Why several streams: a gRPC stream is one call, and a load-balancing policy picks a backend per
call, so one stream feeds one replica however many there are. N streams take turns on the
replicas the channel knows (round_robin), and each reconnect (a replica lost, or the engine's
max connection age closing the connection) picks again, so new replicas get streams too.

The streams share what must be counted once: the ledger (thread-safe; it tracks unanswered
messages per stream number) and the batch iterator (behind a lock: whichever stream has a free
window slot takes the next batch, so a slow replica simply takes fewer). Each stream recovers on
its own with producer/stream/client.py's reconnect and resend, and the resend goes to whichever
replica the channel picks next. The ledger is closed once, after every stream is done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

from datasentinel.producer.inputs.sources import Batch
from datasentinel.producer.stream.ledger import Ledger

log = logging.getLogger(__name__)


class SharedBatches:
    """One batch iterator read by several threads: ``next`` under a lock."""

    def __init__(self, batches: Iterable[Batch]) -> None:
        self._batches = iter(batches)
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        with self._lock:
            return next(self._batches)


class FanOut:
    """Runs ``clients`` (ScoreStreamClients sharing one ledger, built with a shared Numbering
    and ``close_ledger=False``) on one shared batch iterator, each in its own thread, and sums up
    what they did with the attributes the app reads from a single client."""

    def __init__(self, clients: list, ledger: Ledger) -> None:
        self.clients = clients
        self._ledger = ledger
        self.stopped = threading.Event()  # the pacer sleeps on it: set when the run is over
        self.error: str | None = None
        self.interrupted = False

    def run(self, batches: Iterable[Batch]) -> None:
        shared = SharedBatches(batches)
        threads = [
            threading.Thread(target=client.run, args=(shared,), name=f"producer-stream-{i}")
            for i, client in enumerate(self.clients)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():  # a timed join, so Ctrl-C reaches this thread
                    thread.join(0.2)
        except KeyboardInterrupt:
            self.interrupted = True
            for client in self.clients:
                client.cancel()
            for thread in threads:
                thread.join()
        finally:
            self.stopped.set()
        errors = [c.error for c in self.clients if c.error]
        self.interrupted = self.interrupted or any(c.interrupted for c in self.clients)
        self.error = "cancelled (Ctrl-C)" if self.interrupted else (errors[0] if errors else None)
        self._ledger.close(self.error)

    @property
    def reconnects(self) -> int:
        return sum(c.reconnects for c in self.clients)

    @property
    def reconnect_seconds(self) -> list[float]:
        return [s for c in self.clients for s in c.reconnect_seconds]

    @property
    def stream_errors(self) -> list[str]:
        return [e for c in self.clients for e in c.stream_errors]
