"""Several worker processes on one port: one start-up check, one shutdown, signals reach all."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import build_tiny_model, engine_command


def workers_of(engine) -> list[int]:
    pid = engine.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


def versions_seen(engine, dim, connections=12) -> set[str]:
    """Model versions answered over several fresh connections (spread over the workers)."""
    seen = set()
    for _ in range(connections):
        with engine.channel() as channel:
            reply = pb_grpc.AnomalyScorerStub(channel).Score(
                pb.ScoreRequest(ids=[0], raw=pb.RawVectors(data=bytes(4 * dim), rows=1, cols=dim))
            )
            seen.add(reply.model_version)
    return seen


def test_workers_share_the_port_and_stop_together(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2")
    workers = workers_of(engine)
    assert len(workers) == 2
    assert versions_seen(engine, tiny_model.dim) == {tiny_model.version}
    assert engine.stop(signal.SIGTERM) == 0
    assert not any(alive(pid) for pid in workers)
    assert engine.log().count("SIGTERM received") == 2


def test_a_dead_worker_stops_the_engine(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2")
    first, second = workers_of(engine)
    os.kill(first, signal.SIGKILL)
    assert engine.process.wait(30) == 1
    deadline = time.monotonic() + 10
    while alive(second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(second)
    assert "exited with -9; stopping the engine" in engine.log()


def test_sighup_reloads_every_worker(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2", "--reload-poll-seconds", "0")
    build_tiny_model(tiny_model.dir, version="tiny-next", seed=3)
    engine.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while engine.log().count("model reloaded") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert engine.log().count("model reloaded: tiny-1 -> tiny-next") == 2
    assert versions_seen(engine, tiny_model.dim) == {"tiny-next"}


def test_busy_port_is_one_line_with_workers(tiny_model):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            engine_command(tiny_model.dir, "--bind-host", "127.0.0.1", "--port", str(port))
            + ["--workers", "2", "--metrics-port", "-1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"port {port} is already in use" in errors[0]


def test_workers_score_alike(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2")
    x = np.random.default_rng(2).normal(size=(5, tiny_model.dim)).astype(np.float32)
    answers = set()
    for _ in range(8):
        with engine.channel() as channel:
            reply = pb_grpc.AnomalyScorerStub(channel).Score(
                pb.ScoreRequest(
                    ids=range(5), raw=pb.RawVectors(data=x.tobytes(), rows=5, cols=x.shape[1])
                )
            )
            answers.add(tuple(reply.scores))
    assert len(answers) == 1
    np.testing.assert_allclose(answers.pop(), tiny_model.expected(x)[0], rtol=1e-5)
