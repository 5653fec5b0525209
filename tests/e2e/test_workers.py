"""Several worker processes on one port: one start-up check, one shutdown, signals reach all."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import build_tiny_model, engine_command, wait_serving


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
    engine.wait_log("SERVING model", 2)  # both have handlers for the SIGTERM counted below
    workers = workers_of(engine)
    assert len(workers) == 2
    assert versions_seen(engine, tiny_model.dim) == {tiny_model.version}
    assert engine.stop(signal.SIGTERM) == 0
    assert not any(alive(pid) for pid in workers)
    assert engine.log().count("SIGTERM received") == 2


def wait_until(condition, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def worker_environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def scrape(engine) -> str:
    url = f"http://127.0.0.1:{engine.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()


def test_a_dead_worker_is_logged_and_started_again(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2")
    # Health says SERVING once the first worker does: kill only after both have loaded, or the
    # count of SERVING lines below misses the one the killed worker never wrote.
    engine.wait_log("SERVING model", 2, timeout=30)
    first, second = workers_of(engine)
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: len(workers_of(engine)) == 2 and first not in workers_of(engine))
    assert alive(second) and engine.process.poll() is None
    assert wait_until(lambda: engine.log().count("SERVING model") == 3), engine.log()
    assert f"(pid {first}) was killed by SIGKILL; starting it again" in engine.log()
    assert " ERROR " in next(line for line in engine.lines if f"pid {first}" in line)
    wait_serving(engine)
    assert versions_seen(engine, tiny_model.dim) == {tiny_model.version}
    # The supervisor's summed metrics still answer, without the dead worker's live gauges.
    assert "datasentinel_requests_total" in scrape(engine)
    metrics_dir = Path(worker_environment(second)["PROMETHEUS_MULTIPROC_DIR"])
    assert list(metrics_dir.glob(f"gauge_live*_{second}.db"))
    assert not list(metrics_dir.glob(f"gauge_live*_{first}.db"))
    assert engine.stop(signal.SIGTERM) == 0


def test_too_many_worker_deaths_stop_the_engine(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2", "--worker-restart-limit", "1")
    first, second = workers_of(engine)
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: "starting it again" in engine.log())
    assert wait_until(lambda: len(workers_of(engine)) == 2 and first not in workers_of(engine))
    replacement = (set(workers_of(engine)) - {second}).pop()
    os.kill(second, signal.SIGKILL)
    assert engine.process.wait(30) == 1
    assert wait_until(lambda: not alive(replacement), 15)
    assert "more than the restart limit; stopping the engine (exit 1)" in engine.log()


def test_sighup_reloads_every_worker(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2", "--reload-poll-seconds", "0")
    assert wait_until(lambda: engine.log().count("SERVING model") == 2)  # both have loaded
    build_tiny_model(tiny_model.dir, version="tiny-next", seed=3)
    engine.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while engine.log().count("model reloaded") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert engine.log().count("model reloaded: tiny-1 -> tiny-next") == 2
    assert versions_seen(engine, tiny_model.dim) == {"tiny-next"}


def test_sighup_while_the_workers_start_kills_none(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2", wait=False)
    assert wait_until(lambda: len(workers_of(engine)) == 2, 30)
    engine.process.send_signal(signal.SIGHUP)  # they are still importing, far from serving
    wait_serving(engine)
    assert wait_until(lambda: engine.log().count("SERVING model") == 2), engine.log()
    assert "killed by SIGHUP" not in engine.log() and "starting it again" not in engine.log()


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


def time_wait_sockets(port: int) -> int:
    """Sockets in TIME_WAIT (state 06) whose local port is ``port``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += int(local.rsplit(":", 1)[1], 16) == port and state == "06"
    return count


def connections_left_in_time_wait(host: str = "127.0.0.1") -> int:
    """A port as an engine leaves it when it stops with clients connected: nothing listens any
    more, and the connections it closed wait in TIME_WAIT (for a minute) on it."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's listener
        server.bind((host, 0))
        server.listen()
        port = server.getsockname()[1]
        clients = [socket.create_connection((host, port)) for _ in range(3)]
        for _ in clients:
            server.accept()[0].close()  # the server closes first: its side enters TIME_WAIT
        for client in clients:
            client.close()
    return port


def test_restart_on_a_port_whose_old_connections_are_in_time_wait(tiny_model, start_engine):
    port = connections_left_in_time_wait()
    assert time_wait_sockets(port) > 0
    engine = start_engine(tiny_model.dir, "--workers", "2", "--port", str(port))
    assert engine.port == port, engine.log()
    assert versions_seen(engine, tiny_model.dim, connections=2) == {tiny_model.version}


@pytest.mark.parametrize("reuse_address", [False, True], ids=["plain", "SO_REUSEADDR"])
def test_a_port_another_process_listens_on_is_refused(tiny_model, reuse_address):
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse_address))
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
    assert len(errors) == 1 and f"port {port} is already in use" in errors[0], result.stderr


def test_supervisor_killed_takes_its_workers_with_it(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2")
    # Both workers serving: health is SERVING once the first is, and a worker still starting
    # when the supervisor dies logs that instead (also right, but not this test's case).
    engine.wait_log("SERVING model", count=2)
    workers = workers_of(engine)
    engine.process.kill()
    engine.process.wait(10)
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 20), engine.log()
    assert engine.log().count("is gone: stopping this orphaned worker") == 2
    # Nothing holds the port any more: the engine starts again on it.
    again = start_engine(tiny_model.dir, "--workers", "2", "--port", str(engine.port))
    assert again.port == engine.port
