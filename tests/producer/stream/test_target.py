"""--engine-target (round_robin over several engines) and --streams (producer/stream/fanout.py),
against in-process fake engines on 127.0.0.1:0. The real-process version, with kills and a
scale-up, is tests/e2e/test_multi_instance.py."""

import _thread
import threading

import numpy as np
import pytest
from pydantic import ValidationError
from pydantic_settings import CliApp

from datasentinel.producer.app import run
from datasentinel.producer.channel.channel import open_channel
from datasentinel.producer.inputs.sources import synthetic_source
from datasentinel.producer.settings import ProducerSettings
from datasentinel.producer.stream.client import Numbering, ScoreStreamClient
from datasentinel.producer.stream.fanout import FanOut
from datasentinel.producer.stream.ledger import Ledger, RowState


@pytest.fixture(autouse=True)
def _no_target_env(monkeypatch):
    monkeypatch.delenv("ENGINE_TARGET", raising=False)


def parse(argv: list[str]) -> ProducerSettings:
    return CliApp.run(ProducerSettings, cli_args=argv)


def target_of(*engines) -> str:
    return "ipv4:" + ",".join(f"127.0.0.1:{e.port}" for e in engines)


def test_engine_target_env_overrides_host_and_port(monkeypatch):
    monkeypatch.setenv("ENGINE_HOST", "engine.internal")
    monkeypatch.setenv("ENGINE_TARGET", "dns:///engine-headless:9000")
    assert parse([]).target == "dns:///engine-headless:9000"


def test_an_empty_engine_target_means_host_and_port(monkeypatch):
    monkeypatch.setenv("ENGINE_TARGET", "")  # as compose passes ${ENGINE_TARGET:-}
    assert parse(["--engine-host", "engine"]).target == "engine:9000"


def test_engine_target_flag_overrides_env_and_without_it_host_port_is_used(monkeypatch):
    monkeypatch.setenv("ENGINE_TARGET", "dns:///engine-headless:9000")
    settings = parse(["--engine-target", "ipv4:127.0.0.2:9000,127.0.0.3:9000"])
    assert settings.target == "ipv4:127.0.0.2:9000,127.0.0.3:9000"
    monkeypatch.delenv("ENGINE_TARGET")
    assert parse(["--engine-host", "10.0.0.7"]).target == "10.0.0.7:9000"


def test_streams_come_from_flag_or_env_and_must_be_positive(monkeypatch):
    assert parse([]).streams == 1
    monkeypatch.setenv("PRODUCER_STREAMS", "3")
    assert parse([]).streams == 3
    assert parse(["--streams", "5"]).streams == 5
    with pytest.raises(ValidationError, match="streams"):
        parse(["--streams", "0"])


def answered_by(engine) -> int:
    return len(engine.answered_ids)


def test_streams_over_a_target_spread_over_every_engine_and_answer_each_id_once(
    start_engine, settings_for
):
    engines = [start_engine(delay=0.002) for _ in range(3)]
    settings = settings_for(
        engines[0], engine_target=target_of(*engines), streams=3, count=3000, batch_size=50
    )
    result = run(settings)
    assert result.exit_code == 0 and result.answered == 3000
    assert result.ledger.duplicate_answers == 0
    answered = sorted(i for e in engines for i in e.answered_ids)
    assert answered == list(range(3000))  # each id answered once, by one of them
    assert all(answered_by(e) > 0 for e in engines), [answered_by(e) for e in engines]


def test_without_a_target_one_engine_takes_every_stream(start_engine, settings_for):
    # The single-address path is unchanged: host and port, gRPC's default policy.
    engine, other = start_engine(), start_engine()
    result = run(settings_for(engine, streams=2, count=1000))
    assert result.exit_code == 0 and sorted(engine.answered_ids) == list(range(1000))
    assert other.answered_ids == []


def test_a_replica_breaking_its_streams_loses_and_duplicates_nothing(start_engine, settings_for):
    flaky = start_engine(break_after=2, break_streams=2, delay=0.002)
    steady = start_engine(delay=0.002)
    settings = settings_for(
        flaky, engine_target=target_of(flaky, steady), streams=2, count=2000, batch_size=50
    )
    result = run(settings)
    assert result.exit_code == 0 and result.answered == 2000 and result.failed == 0
    assert result.ledger.duplicate_answers == 0 and result.n_violations == 0
    assert result.reconnects >= 1  # the flaky replica did break a stream
    assert result.ledger.resent_vectors > 0  # and what it left unanswered was sent again


def test_ctrl_c_cancels_every_stream_and_fails_what_is_left(start_engine):
    engine = start_engine(delay=0.05)  # ~2.5 s of answers: the interrupt lands mid-run
    source = synthetic_source(5000, seed=1)
    ledger = Ledger(source.n_rows)
    with open_channel(f"127.0.0.1:{engine.port}") as channel:
        numbering = Numbering()
        clients = [
            ScoreStreamClient(channel, ledger, 4, numbering=numbering, close_ledger=False)
            for _ in range(2)
        ]
        fanout = FanOut(clients, ledger)
        timer = threading.Timer(0.3, _thread.interrupt_main)  # Ctrl-C reaches the main thread
        timer.start()
        fanout.run(source.batches(50))
        timer.join()
    assert fanout.interrupted and fanout.error == "cancelled (Ctrl-C)"
    assert np.count_nonzero(ledger.state == RowState.PENDING) == 0
    assert np.count_nonzero(ledger.state == RowState.FAILED) > 0
    assert all(not thread.is_alive() for thread in threading.enumerate() if "stream" in thread.name)
