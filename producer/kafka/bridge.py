"""The bridge loop: read events, batch them to the engine, write verdicts and dead letters,
commit what the broker acknowledged.

One thread drives the consumer, the producer and the engine calls (librdkafka's rebalance and
delivery callbacks run inside its poll calls, on this thread), so nothing here needs a lock.
Each turn of the loop:

1. pause every assigned partition while the engine sheds load or is unreachable (a batch waits
   out a backoff) or while ``max_pending`` events are read and uncommitted; resume after. The
   lag then builds up in the broker, where KEDA sees it, not in the bridge's memory;
2. read what arrived (a short timeout), decode it: scorable events join the open batch,
   the rest are written to the dead-letter topic at once (they never block their partition);
3. send the batch when full or when its oldest event has waited ``batch_wait_ms``;
4. take the engine's answers in order and write one verdict per event;
5. serve delivery reports: an acknowledged verdict or dead letter marks its offset done;
6. commit, every ``commit_interval_ms``, the contiguous done offsets of each partition.

At-least-once: an offset is committed only after its event's verdict (or dead letter) was
acknowledged, so a crash anywhere repeats events (same ``source``) and never loses one.
With ``--transactional`` the verdicts, dead letters and offsets of each interval go in one
Kafka transaction instead (exactly-once for read_committed readers).

A rebalance (``on_revoke``) and SIGTERM both drain: send what is read, wait for the answers
and acknowledgements (at most ``drain_timeout``), commit; what is left is handed back
uncommitted and read again by the partition's next owner.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from datasentinel.producer.kafka.codec import (
    Decoder,
    Event,
    Rejected,
    Source,
    dead_letter,
    verdict,
)
from datasentinel.producer.kafka.metrics import BridgeMetrics
from datasentinel.producer.kafka.offsets import OffsetTracker
from datasentinel.producer.kafka.scorer import Failed, Scored, Scorer
from datasentinel.producer.kafka.settings import BridgeSettings

log = logging.getLogger(__name__)

# Most messages taken from the consumer per turn of the loop.
READ_CHUNK = 1000
# Consumer poll timeout with work in flight (answers and acknowledgements are checked between
# polls) and when idle, seconds.
BUSY_POLL_S = 0.002
IDLE_POLL_S = 0.1


class BridgeError(Exception):
    """The bridge cannot go on (a fatal client error, an aborted transaction): exit 1, and a
    restart reads again from the committed offsets."""


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        consumer_factory: Callable,
        producer,
        decoder: Decoder,
        scorer: Scorer,
        metrics: BridgeMetrics,
        batch_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._producer = producer
        self._decoder = decoder
        self._scorer = scorer
        self._metrics = metrics
        self._batch_size = batch_size
        self._clock = clock
        self._tracker = OffsetTracker()
        self._batch: list[Event] = []
        self._batch_since = 0.0
        self._assigned: set[tuple[str, int]] = set()
        self._paused = False
        self._last_commit = clock()
        self._transactional = settings.transactional
        self._in_transaction = False
        self.stop = threading.Event()
        self.failure: str | None = None  # why the bridge stopped on its own (exit 1)
        self._consumer = consumer_factory(
            error_cb=self._on_client_error,
            stats_cb=metrics.on_stats,
            on_commit=self._on_commit,
        )

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Runs until ``stop`` is set, then drains, commits and closes."""
        topics = self._settings.kafka_topic
        if self._transactional:
            self._producer.init_transactions(30)
        self._consumer.subscribe(
            topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info("reading %s as group %s", ",".join(topics), self._settings.kafka_group)
        try:
            while not self.stop.is_set():
                self._turn()
            log.info("stopping: draining what was read")
            self._drain(self._settings.drain_timeout)
        finally:
            self._consumer.close()  # on_revoke drains again (nothing left) and commits
            self._producer.flush(5)

    def _turn(self) -> None:
        self._flow_control()
        if self._commit_barrier():
            self._finish_interval()
        else:
            busy = self._scorer.busy or self._batch or self._tracker.pending
            timeout = BUSY_POLL_S if busy else IDLE_POLL_S
            for message in self._consumer.consume(READ_CHUNK, timeout):
                self._take(message)
        self._send_batches(force=self._commit_barrier())
        self._collect()
        self._producer.poll(0)
        if not self._transactional:
            self._commit_if_due()

    def _flow_control(self) -> None:
        """Pauses the input while the engine is in trouble or too much is pending."""
        pending = self._tracker.pending
        self._metrics.pending.set(pending)
        want = self._scorer.troubled or pending >= self._settings.max_pending
        if want == self._paused:
            return
        parts = [TopicPartition(t, p) for t, p in self._assigned]
        if want:
            self._consumer.pause(parts)
            log.info("paused %d partition(s): %s", len(parts), self._why_paused(pending))
        else:
            self._consumer.resume(parts)
            log.info("resumed %d partition(s)", len(parts))
        self._paused = want
        self._metrics.paused.set(1 if want else 0)

    def _why_paused(self, pending: int) -> str:
        if self._scorer.troubled:
            return "the engine sheds load or is unreachable"
        return f"{pending} events pending (--max-pending)"

    def _take(self, message) -> None:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise BridgeError(f"consumer: {error.str()}")
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer: %s", error.str())
            return
        self._metrics.events_in.inc()
        tp = (message.topic(), message.partition())
        self._tracker.read(tp, message.offset())
        _, timestamp = message.timestamp()
        source = _source(message)
        event = self._decoder.decode(source, message.key(), message.value(), timestamp or None)
        if isinstance(event, Rejected):
            self._write(
                self._settings.kafka_dead_letter_topic,
                event.key,
                dead_letter(event),
                tp,
                event.source.offset,
                None,
            )
            return
        if not self._batch:
            self._batch_since = self._clock()
        self._batch.append(event)

    def _send_batches(self, force: bool = False) -> None:
        self._scorer.resend_due()
        while self._batch and self._scorer.has_room():
            full = len(self._batch) >= self._batch_size
            waited = self._clock() - self._batch_since
            if not (full or force or waited * 1000 >= self._settings.batch_wait_ms):
                return
            events, self._batch = self._batch[: self._batch_size], self._batch[self._batch_size :]
            self._batch_since = self._clock()
            self._scorer.submit(events)

    def _collect(self) -> None:
        for outcome in self._scorer.answers():
            owned = [
                (e, row)
                for e, row in zip(outcome.batch.events, _rows(outcome), strict=True)
                if (e.source.topic, e.source.partition) in self._assigned
            ]
            for event, row in owned:
                tp = (event.source.topic, event.source.partition)
                if isinstance(outcome, Failed):
                    rejected = Rejected(event.source, event.key, None, outcome.reason)
                    topic, value = self._settings.kafka_dead_letter_topic, dead_letter(rejected)
                    stamp = None
                else:
                    topic, value = self._settings.kafka_output_topic, verdict(event, row)
                    stamp = event.timestamp_ms
                self._write(topic, event.key, value, tp, event.source.offset, stamp)
        for code, n in self._scorer.retries_by_code.items():
            self._metrics.engine_retries.labels(code).inc(n)
        self._scorer.retries_by_code.clear()

    # -- writing ----------------------------------------------------------------------------

    def _write(self, topic, key, value, tp, offset: int, timestamp_ms: int | None) -> None:
        """Produces one verdict or dead letter; its offset is done when the broker has it (in a
        transaction: when the transaction commits, so done at once)."""
        if self._transactional and not self._in_transaction:
            self._producer.begin_transaction()
            self._in_transaction = True
        report = partial(self._delivered, topic, key, value, tp, offset, timestamp_ms)
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=report)
                break
            except BufferError:  # the producer's queue is full: let it send
                self._producer.poll(0.05)
        if self._transactional:
            self._tracker.done(tp, offset)

    def _delivered(self, topic, key, value, tp, offset, timestamp_ms, error, message) -> None:
        if error is not None:
            if self._transactional:
                return  # commit_transaction fails, and the bridge with it
            log.warning("write to %s failed (%s); writing it again", topic, error.str())
            self._write(topic, key, value, tp, offset, timestamp_ms)
            return
        if topic == self._settings.kafka_dead_letter_topic:
            self._metrics.dead_letters.inc()
        else:
            self._metrics.verdicts.inc()
            if timestamp_ms is not None:
                self._metrics.latency.observe(max(0.0, time.time() - timestamp_ms / 1000))
        if not self._transactional:
            self._tracker.done(tp, offset)

    # -- committing -------------------------------------------------------------------------

    def _commit_if_due(self, force: bool = False) -> None:
        interval = self._settings.commit_interval_ms / 1000
        if not force and self._clock() - self._last_commit < interval:
            return
        self._last_commit = self._clock()
        points = self._tracker.commit_points() if force else self._tracker.to_commit()
        if not points:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in points.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=not force)
        except KafkaException as e:
            log.warning("commit failed (%s); the next one covers it", e.args[0].str())
            return
        self._tracker.committed(points)
        self._metrics.commits.inc()

    def _on_commit(self, error, partitions) -> None:
        """An asynchronous commit's result: what failed (a rebalance in progress, a broker
        away) is committed again with the next one."""
        failed = [p for p in partitions if error is not None or p.error is not None]
        if failed:
            reason = error.str() if error is not None else failed[0].error.str()
            log.info("commit of %s failed (%s); retried with the next", _names(failed), reason)
            self._tracker.not_committed((p.topic, p.partition) for p in failed)

    def _commit_barrier(self) -> bool:
        """With transactions: time to end the interval (nothing new is read until the events
        read so far are all answered and in the transaction)."""
        if not self._transactional or not self._in_transaction:
            return False
        return self._clock() - self._last_commit >= self._settings.commit_interval_ms / 1000

    def _finish_interval(self) -> None:
        if self._batch or self._scorer.busy or self._tracker.pending:
            self._scorer.wait(BUSY_POLL_S)
            return
        self._commit_transaction()

    def _commit_transaction(self) -> None:
        """Commits the open transaction with the input offsets of everything in it."""
        self._last_commit = self._clock()
        if not self._in_transaction:
            return
        points = self._tracker.to_commit()
        offsets = [TopicPartition(t, p, o) for (t, p), o in points.items()]
        try:
            if offsets:
                self._producer.send_offsets_to_transaction(
                    offsets, self._consumer.consumer_group_metadata(), 30
                )
            self._producer.commit_transaction(30)
        except KafkaException as e:
            self._in_transaction = False
            try:
                self._producer.abort_transaction(30)
            except KafkaException:
                pass
            raise BridgeError(f"transaction aborted ({e}); restart from committed offsets") from e
        self._in_transaction = False
        self._tracker.committed(points)
        self._metrics.commits.inc()

    # -- draining and rebalancing -----------------------------------------------------------

    def _drain(self, timeout: float) -> None:
        """Sends everything read, waits (at most ``timeout``) until it is answered and
        acknowledged, commits. Events still pending stay uncommitted."""
        deadline = self._clock() + timeout
        while self._clock() < deadline and (
            self._batch or self._scorer.busy or self._tracker.pending
        ):
            self._send_batches(force=True)
            self._collect()
            self._producer.poll(0)
            self._scorer.wait(0.01)
        if self._transactional:
            if not (self._batch or self._scorer.busy or self._tracker.pending):
                self._commit_transaction()
            elif self._in_transaction:
                self._producer.abort_transaction(30)
                self._in_transaction = False
            return
        self._producer.flush(max(0.0, deadline - self._clock()))
        self._commit_if_due(force=True)
        left = self._tracker.pending
        if left:
            log.warning("%d event(s) not answered in time: left uncommitted, read again", left)

    def _on_assign(self, consumer, partitions) -> None:
        self._assigned |= {(p.topic, p.partition) for p in partitions}
        if self._paused:
            consumer.pause(partitions)
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, consumer, partitions) -> None:
        log.info("revoked %s: finishing what was read from them", _names(partitions))
        self._drain(self._settings.drain_timeout)
        points = {tp: self._tracker.commit_point(tp) for tp in self._assigned}
        log.info("handing back at %s", ", ".join(f"{t}[{p}]@{o}" for (t, p), o in points.items()))
        self._hand_back(partitions)

    def _on_lost(self, consumer, partitions) -> None:
        log.warning("lost %s: nothing more is committed there", _names(partitions))
        self._hand_back(partitions)

    def _hand_back(self, partitions) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self._assigned -= gone
        self._tracker.forget(gone)
        keep = partial(_owned, self._assigned)
        self._batch = [e for e in self._batch if keep(e)]
        self._scorer.drop(keep)

    def _on_client_error(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("kafka: fatal: %s", error.str())
            self.failure = f"kafka: {error.str()}"
            self.stop.set()
        else:
            log.debug("kafka: %s", error.str())


def _source(message) -> Source:
    return Source(message.topic(), message.partition(), message.offset())


def _owned(assigned, event: Event) -> bool:
    return (event.source.topic, event.source.partition) in assigned


def _rows(outcome):
    if isinstance(outcome, Scored):
        return outcome.rows
    return [None] * len(outcome.batch.events)


def _names(partitions) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
