"""What the Kafka bridge's end-to-end tests and its benchmark share: events to feed, a bridge
process, a reader of the output topics, and the check that every event is accounted for."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from tests.producer.kafka.brokers import FAST_GROUP_OPTIONS, REPO, create_topics

FEATURES = ["f0", "f1", "f2", "f3"]


def good_event(i: int) -> dict:
    """Event i: the tiny model's features by name (in another order) and two keys."""
    values = {f: round(((i * 7 + j * 13) % 100) / 25.0 - 2.0, 3) for j, f in enumerate(FEATURES)}
    return {"event_id": i, "machine": f"m-{i % 17}", **dict(reversed(values.items()))}


def bad_events() -> list[bytes]:
    """One of each kind of unscorable message."""
    return [
        b"not json at all",
        b"[1, 2, 3]",
        json.dumps({"f0": 1, "f1": 2, "f2": 3}).encode(),  # f3 missing
        json.dumps({"f0": 1, "f1": 2, "f2": 3, "f3": "high"}).encode(),
        json.dumps({"f0": 1, "f1": 2, "f2": 3, "f3": 1e300}).encode(),
        json.dumps({"f0": 1, "f1": 2, "f2": 3, "f3": 4, "pad": "x" * 5000}).encode(),
        b"\xff\xfe binary",
    ]


@dataclass
class Feed:
    """Writes ``count`` good events (key = event id) with the bad ones spread among them, at
    most ``rate`` per second, in a thread; ``bad_keys`` are the keys of the bad ones."""

    bootstrap: str
    topic: str
    count: int
    rate: float = 0
    bad_every: int = 500
    bad_keys: list[bytes] = field(default_factory=list)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "acks": "all"})
        bad = bad_events()
        started = time.monotonic()
        for i in range(self.count):
            producer.produce(self.topic, json.dumps(good_event(i)).encode(), str(i).encode())
            if i % self.bad_every == 0:
                key = f"bad-{i}".encode()
                self.bad_keys.append(key)
                producer.produce(self.topic, bad[(i // self.bad_every) % len(bad)], key)
            if i % 1000 == 0:
                producer.poll(0)
                if self.rate:
                    ahead = i / self.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        assert producer.flush(30) == 0, "the feed could not write every event"


class Reader:
    """Reads the verdict and dead-letter topics (read_committed) in a thread."""

    def __init__(self, bootstrap: str, verdicts: str, dead_letters: str) -> None:
        self.verdicts: list[dict] = []
        self.dead_letters: list[dict] = []
        self.keys: list[bytes | None] = []
        self._topics = {verdicts: (self.verdicts, self.keys), dead_letters: (self.dead_letters, [])}
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"reader-{verdicts}-{os.getpid()}-{time.monotonic_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        # Assigned, not subscribed: no group join to wait for (3 s on the mock cluster).
        create_topics(bootstrap, verdicts, dead_letters)
        parts = []
        for topic in (verdicts, dead_letters):
            metadata = self._consumer.list_topics(topic, timeout=10).topics[topic]
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        self._consumer.assign(parts)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(1000, 0.05):
                if message.error() is None:
                    values, keys = self._topics[message.topic()]
                    values.append(json.loads(message.value()))
                    keys.append(message.key())

    def wait_for(self, verdicts: int, dead_letters: int = 0, timeout: float = 60, alive=()) -> None:
        """Until at least this many unique verdicts and dead letters are in, or ``timeout``, or
        one of the ``alive`` bridges exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for bridge in alive:
                assert bridge.process.poll() is None, f"bridge exited:\n{bridge.log}"
            if (
                len(unique(self.verdicts)) >= verdicts
                and len(unique(self.dead_letters)) >= dead_letters
            ):
                return
            time.sleep(0.02)
        raise AssertionError(
            f"{len(unique(self.verdicts))} verdicts and {len(unique(self.dead_letters))} dead "
            f"letters after {timeout:g} s, waiting for {verdicts} and {dead_letters}"
            + "".join(f"\nbridge log:\n{b.log[-4000:]}" for b in alive)
        )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def source_of(record: dict) -> tuple:
    s = record["source"]
    return (s["topic"], s["partition"], s["offset"])


def unique(records: list[dict]) -> set[tuple]:
    return {source_of(r) for r in records}


@dataclass
class Accounting:
    lost: int  # good events without a verdict
    repeats: int  # verdicts beyond the first per source
    conflicting: int  # repeats that differ from the first (must be 0)
    dead_letters: int
    bad_missing: int  # bad events not in the dead-letter topic
    good_in_dead_letters: int

    def assert_complete(self) -> None:
        assert (self.lost, self.conflicting, self.bad_missing, self.good_in_dead_letters) == (
            0,
            0,
            0,
            0,
        ), self


def account(reader: Reader, count: int, bad: int) -> Accounting:
    """Every good event (event_id 0..count-1) has a verdict; repeats are identical records."""
    first: dict[tuple, dict] = {}
    repeats = conflicting = 0
    ids = set()
    for record in reader.verdicts:
        source = source_of(record)
        if source in first:
            repeats += 1
            conflicting += record != first[source]
        else:
            first[source] = record
            ids.add(record["event_id"])
    dead_sources = unique(reader.dead_letters)
    good_dead = sum(1 for r in reader.dead_letters if not r["reason"])
    return Accounting(
        lost=count - len(ids & set(range(count))),
        repeats=repeats,
        conflicting=conflicting,
        dead_letters=len(dead_sources),
        bad_missing=bad - len(dead_sources),
        good_in_dead_letters=good_dead,
    )


class BridgeProcess:
    """``python -m datasentinel.producer.kafka`` as a child process, its log collected live."""

    def __init__(self, bootstrap: str, engine_port: int, topic: str, *flags: str) -> None:
        argv = [sys.executable, "-m", "datasentinel.producer.kafka"]
        argv += ["--kafka-bootstrap", bootstrap, "--kafka-topic", topic]
        argv += ["--kafka-group", f"{topic}-group", "--kafka-output-topic", f"{topic}-verdicts"]
        argv += ["--kafka-dead-letter-topic", f"{topic}-dead", "--engine-host", "127.0.0.1"]
        argv += ["--engine-port", str(engine_port), "--max-message-bytes", "4096"]
        argv += ["--kafka-option", ",".join(FAST_GROUP_OPTIONS), *flags]
        self.process = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._pump = threading.Thread(target=self._read_log, daemon=True)
        self._pump.start()

    def _read_log(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no {text!r} in the bridge log:\n{self.log}"
            assert self.process.poll() is None, f"bridge exited early:\n{self.log}"
            time.sleep(0.02)

    def metric(self, name: str) -> float:
        """One value from the bridge's /metrics (started with --metrics-port 0)."""
        self.wait_for_log("metrics on http://")
        url = next(
            re.search(r"metrics on (http://\S+)", line).group(1)
            for line in self.lines
            if "metrics on http://" in line
        )
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        assert match, f"no {name} in the bridge's metrics"
        return float(match.group(1))

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._pump.join(5)
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


def counts(records: list[dict]) -> Counter:
    return Counter(source_of(r) for r in records)
