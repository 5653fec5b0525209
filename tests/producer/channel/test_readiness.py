import socket
import time

import pytest

from datasentinel.producer.cli import main


def test_waits_for_serving_then_streams(start_engine, args_for):
    engine = start_engine(serving_after=0.4)
    started = time.monotonic()
    assert main(args_for(engine)) == 0
    assert time.monotonic() - started >= 0.4
    assert len(engine.sent_ids) == 200


def test_never_serving_exits_3_naming_the_engine_and_last_status(start_engine, caplog):
    engine = start_engine(serving_after=None)
    argv = ["--engine-host", "127.0.0.1", "--engine-port", str(engine.port)]
    assert main([*argv, "--ready-timeout", "0.5"]) == 3
    assert f"engine at 127.0.0.1:{engine.port} not SERVING after 0.5 s (last: NOT_SERVING)" in (
        caplog.text
    )
    assert engine.requests == []


@pytest.fixture
def closed_port():
    """A port nothing listens on: bound (so no one else takes it) but not listening, so
    connections to it are refused. Not "find a free port then close it": that races."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_nothing_listening_exits_3_with_connection_refused(closed_port, caplog):
    argv = ["--engine-host", "127.0.0.1", "--engine-port", str(closed_port)]
    started = time.monotonic()
    assert main([*argv, "--ready-timeout", "0.5"]) == 3
    assert time.monotonic() - started < 3
    assert "(last: connection refused); is it running?" in caplog.text


def test_width_not_matching_input_dim_exits_2_before_streaming(start_engine, args_for, caplog):
    engine = start_engine(input_dim=5, feature_names=list("abcde"))
    assert main(args_for(engine)) == 2
    assert "has 8 features per vector but the engine's model" in caplog.text
    assert "expects 5 (a, b, c, d, e)" in caplog.text
    assert engine.requests == []


def test_csv_lacking_a_model_feature_column_exits_2_with_one_line(
    start_engine, args_for, tmp_path, caplog
):
    engine = start_engine(input_dim=2, feature_names=["x", "y"])
    path = tmp_path / "in.csv"
    path.write_text("x,z\n1,2\n")
    assert main(args_for(engine, "--csv", str(path))) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "lacks the model's feature column(s) 'y'" in error and "\n" not in error
    assert "the file's columns: 'x', 'z'" in error
    assert engine.requests == []


def test_batch_size_is_lowered_to_the_engines_max_batch_rows(start_engine, args_for):
    engine = start_engine(max_batch_rows=50)
    assert main(args_for(engine, "--batch-size", "64")) == 0
    assert max(len(r.ids) for r in engine.requests) == 50
