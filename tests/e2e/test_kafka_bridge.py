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
from tests.producer.kafka.brokers import start_mock_cluster, start_tansu
from tests.producer.kafka.harness import BridgeProcess, Feed, Reader, account, unique

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
def topic(cluster) -> str:
    """A new input topic (4 partitions: the mock cluster's default), created before use."""
    name = f"events-{uuid.uuid4().hex[:8]}"
    cluster.create_topics(name)
    return name


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
    if result.lost:
        log.info(
            "%d verdicts read; bridge logs:\n%s",
            len(reader.verdicts),
            "\n".join(b.log[-3000:] for b in bridges),
        )
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


RATE = 8_000  # events/s written while the bridge runs: a 2.5 s stream, so kills land mid-run
# A group rebalance on the mock cluster takes 1.5-4 s (join phase): an 8 s stream has room for a
# join and a leave.
REBALANCE_RATE = 2_500


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def mid_run(reader: Reader, bridge: BridgeProcess, verdicts: int) -> None:
    reader.wait_for(verdicts, timeout=30, alive=[bridge])
    assert len(unique(reader.verdicts)) < COUNT, "the run was over before the fault: nothing tested"


def test_bridge_killed_mid_run_and_restarted_loses_nothing(
    models, cluster, topic, start_engine, bridges, reader
):
    engine = start_engine(models, "--workers", "1")
    # A backlog: the bridge reads ahead of its verdicts (up to --max-pending), so a kill lands
    # with thousands of events read and not yet answered.
    feed = Feed(cluster.bootstrap, topic, COUNT)
    feed.run()
    first = bridges(cluster.bootstrap, engine.port, topic)
    mid_run(reader, first, 3000)
    first.kill()
    second = bridges(cluster.bootstrap, engine.port, topic)
    result = finish(reader, feed, "bridge killed", second)
    log.info("bridge kill -9: %d repeat(s), every one identical to its first", result.repeats)


def test_engine_killed_mid_run_pauses_the_input_and_loses_nothing(
    models, cluster, topic, start_engine, bridges, reader
):
    engine = start_engine(models, "--workers", "1")
    port = engine.port
    bridge = bridges(cluster.bootstrap, port, topic, "--metrics-port", "0")
    bridge.wait_for_log(f"assigned {topic}")
    feed = Feed(cluster.bootstrap, topic, COUNT, rate=RATE / 2)
    feeding = feed.start()
    mid_run(reader, bridge, 3000)
    engine.process.kill()
    engine.process.wait(10)
    time.sleep(0.5)  # the failed calls are noticed, what was fetched before the pause is taken
    # While the engine is down the bridge reads nothing more, as the feed goes on: the backlog
    # waits in the broker (where lag-based scaling sees it), not in the bridge's memory.
    read_while_down = [bridge.metric("datasentinel_bridge_events_in_total")]
    time.sleep(1.0)
    read_while_down.append(bridge.metric("datasentinel_bridge_events_in_total"))
    assert feeding.is_alive(), "the feed ended before the outage did: nothing to hold back"
    paused = bridge.metric("datasentinel_bridge_paused")
    start_engine(models, "--workers", "1", "--port", str(port))
    result = finish(reader, feed, "engine killed", bridge)
    assert read_while_down[0] == read_while_down[1] and paused == 1, read_while_down
    assert "paused" in bridge.log and "resumed" in bridge.log
    log.info("engine kill -9: %d repeat(s)", result.repeats)


def test_rebalance_second_bridge_joins_then_leaves_loses_nothing(
    models, cluster, topic, start_engine, bridges, reader
):
    engine = start_engine(models, "--workers", "1")
    first = bridges(cluster.bootstrap, engine.port, topic)
    first.wait_for_log(f"assigned {topic}")
    feed = Feed(cluster.bootstrap, topic, COUNT, rate=REBALANCE_RATE)
    feed.start()
    mid_run(reader, first, 2000)
    # The second bridge batches by time (up to 300 ms of events): when it leaves, it holds
    # events read and not yet answered, which it must finish or hand back uncommitted.
    second = bridges(
        cluster.bootstrap,
        engine.port,
        topic,
        "--batch-size",
        "4096",
        "--batch-wait-ms",
        "300",
        "--metrics-port",
        "0",
    )
    second.wait_for_log(f"assigned {topic}")
    mid_run(reader, second, len(unique(reader.verdicts)) + 2000)
    wait_until(lambda: second.metric("datasentinel_bridge_pending_events") > 0)
    assert second.terminate() == 0, second.log  # leaves: drains, commits, hands back
    assert "revoked" in first.log
    result = finish(reader, feed, "rebalance", first)
    log.info("rebalance (join, then leave): %d repeat(s)", result.repeats)


@pytest.fixture(scope="module")
def tansu():
    broker = start_tansu()
    yield broker
    broker.stop()


def test_exactly_once_on_tansu_bridge_stopped_mid_run_repeats_nothing(
    models, tansu, start_engine, bridges
):
    """--transactional: verdicts, dead letters and input offsets commit together, so a bridge
    stopped mid-run (SIGTERM) and started again leaves each verdict exactly once for a
    read_committed reader.

    What the brokers we have showed (producer/README.md, "Kafka"): librdkafka's mock cluster
    accepts the transactional calls but commits no offsets through send_offsets_to_transaction
    and shows open transactions to read_committed readers, so there nothing is exactly-once.
    Tansu does both, but does not abort a killed producer's open transaction when its successor
    calls init_transactions (the records become visible), so after kill -9 it repeats events.
    """
    topic = f"events-{uuid.uuid4().hex[:8]}"
    tansu.create_topics(topic, f"{topic}-verdicts", f"{topic}-dead")
    engine = start_engine(models, "--workers", "1")
    reader = Reader(tansu.bootstrap, f"{topic}-verdicts", f"{topic}-dead")
    try:
        feed = Feed(tansu.bootstrap, topic, COUNT)
        feed.run()
        first = bridges(tansu.bootstrap, engine.port, topic, "--transactional")
        mid_run(reader, first, 3000)
        assert first.terminate() == 0, first.log
        second = bridges(tansu.bootstrap, engine.port, topic, "--transactional")
        result = finish(reader, feed, "exactly-once, bridge stopped and restarted (Tansu)", second)
        assert result.repeats == 0
    finally:
        reader.close()
