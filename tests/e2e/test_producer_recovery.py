"""The producer survives its engine, with real processes: ``datasentinel-produce`` streams 200k
vectors while the engine is killed (SIGKILL), stopped (SIGTERM) or a worker of it is killed, and
finishes with every id answered exactly once; against an engine that reports SERVING and never
answers it exits 1 within its bounds instead of hanging.

Each kill lands mid-stream: the producer is paced (--rate) so the stream lasts seconds, and the
summary must show the reconnect. The figures (reconnect time, resent vectors) are logged: see
them with ``pytest --log-cli-level=INFO``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from datasentinel import synthetic
from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc
from tests.conftest import REPO, build_tiny_model

log = logging.getLogger(__name__)

COUNT = 200_000
RATE = 40_000  # vectors/s: a stream of ~5 s, so a kill after ~1 s lands mid-stream
DIM = synthetic.SyntheticSpec().n_features
SERVICE = "datasentinel.v1.AnomalyScorer"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("recovery") / "models", dim=DIM).dir


class Producer:
    """``datasentinel-produce`` as a child process, its stderr (the log) collected live."""

    def __init__(self, port: int, output: Path, *flags: str) -> None:
        argv = [sys.executable, "-m", "datasentinel.producer", "--engine-host", "127.0.0.1"]
        argv += ["--engine-port", str(port), "--count", str(COUNT), "--batch-size", "64"]
        argv += ["--show", "none", "--output", str(output), "--ready-timeout", "30", *flags]
        self.process = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.log: list[str] = []
        self._pump = threading.Thread(target=self._read_log, daemon=True)
        self._pump.start()

    def _read_log(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.log):
            assert time.monotonic() < deadline, f"no {text!r} in the producer log:\n{self.text}"
            assert self.process.poll() is None, f"producer exited early:\n{self.text}"
            time.sleep(0.02)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        stdout, _ = self.process.communicate(timeout=timeout)
        self._pump.join(5)
        return self.process.returncode, stdout

    @property
    def text(self) -> str:
        return "".join(self.log)


@pytest.fixture
def producers():
    started: list[Producer] = []

    def start(port: int, output: Path, *flags: str) -> Producer:
        producer = Producer(port, output, *flags)
        started.append(producer)
        return producer

    yield start
    for producer in started:
        if producer.process.poll() is None:
            producer.process.kill()
            producer.process.wait()


def paced(producers, port: int, output: Path) -> Producer:
    producer = producers(port, output, "--rate", str(RATE), "--max-retry-seconds", "30")
    producer.wait_for_log("streaming to")
    time.sleep(1.0)  # ~40k vectors answered: well inside the ~5 s stream
    return producer


def assert_every_id_answered_once(code, stdout, producer: Producer, output: Path, engine_log=""):
    assert code == 0, f"{stdout}\n{producer.text}\nengine log:\n{engine_log}"
    assert f"answered     {COUNT} (100.00%)" in stdout and "failed       0" in stdout
    assert "duplicates" not in stdout  # no row was answered twice
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["id"]) for row in rows] == list(range(COUNT))
    assert all(row["score"] != "" for row in rows)  # every row has its one result


def check_recovery(stdout: str) -> None:
    """The reconnect must have happened mid-stream; logs how long it took (the figures:
    pytest --log-cli-level=INFO)."""
    match = re.search(
        r"reconnects   (\d+) after \d+ broken stream\(s\), longest ([\d.]+) s; "
        r"resent (\d+) messages \((\d+) vectors\)",
        stdout,
    )
    assert match, f"no reconnect in the summary: the fault did not hit the stream\n{stdout}"
    reconnects, longest, messages, vectors = match.groups()
    assert int(reconnects) >= 1
    log.info(
        "%s reconnect(s), longest %s s; resent %s messages (%s vectors)",
        reconnects,
        longest,
        messages,
        vectors,
    )


def test_engine_killed_mid_stream_and_restarted_on_its_port_loses_nothing(
    models, start_engine, producers, tmp_path
):
    engine = start_engine(models, "--workers", "1")
    port = engine.port
    output = tmp_path / "results.csv"
    producer = paced(producers, port, output)
    engine.stop(signal.SIGKILL)
    start_engine(models, "--workers", "1", "--port", str(port))  # the same port, read back
    code, stdout = producer.finish()
    assert_every_id_answered_once(code, stdout, producer, output)
    check_recovery(stdout)


def test_engine_stopped_gracefully_mid_stream_and_restarted_loses_nothing(
    models, start_engine, producers, tmp_path
):
    grace = {"ENGINE_GRACE_SECONDS": "1"}
    engine = start_engine(models, "--workers", "1", env=grace)
    port = engine.port
    output = tmp_path / "results.csv"
    producer = paced(producers, port, output)
    assert engine.stop(signal.SIGTERM) == 0
    start_engine(models, "--workers", "1", "--port", str(port), env=grace)
    code, stdout = producer.finish()
    assert_every_id_answered_once(code, stdout, producer, output)
    check_recovery(stdout)


def workers_of(engine) -> list[int]:
    pid = engine.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _tcp_connections() -> list[tuple[int, int, int]]:
    """(local port, remote port, socket inode) of every established TCP connection (gRPC
    may use IPv4-mapped IPv6 sockets for 127.0.0.1, so both tables)."""
    connections = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01":  # ESTABLISHED
                local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
                connections.append((local, remote, int(fields[9])))
    return connections


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def worker_serving(engine, producer: Producer) -> int:
    """The worker holding the producer's connection (the kernel picked it: SO_REUSEPORT)."""
    connections = _tcp_connections()
    mine = _socket_inodes(producer.process.pid)
    client_ports = {local for local, remote, inode in connections if inode in mine}
    client_ports &= {local for local, remote, _ in connections if remote == engine.port}
    served = {inode for local, remote, inode in connections if remote in client_ports}
    served &= {inode for local, remote, inode in connections if local == engine.port}
    owners = [pid for pid in workers_of(engine) if _socket_inodes(pid) & served]
    assert len(owners) == 1, (client_ports, served, owners)
    return owners[0]


def test_worker_killed_mid_stream_loses_nothing(models, start_engine, producers, tmp_path):
    engine = start_engine(models, "--workers", "2")
    output = tmp_path / "results.csv"
    producer = paced(producers, engine.port, output)
    worker = worker_serving(engine, producer)
    os.kill(worker, signal.SIGKILL)
    code, stdout = producer.finish()
    assert_every_id_answered_once(code, stdout, producer, output, engine.log())
    check_recovery(stdout)
    assert worker not in workers_of(engine)


class HungScorer(scoring_pb2_grpc.AnomalyScorerServicer):
    """Reports SERVING, describes a model, takes every request and never answers one."""

    def GetModelInfo(self, request, context):
        return scoring_pb2.ModelInfo(input_dim=DIM, model_version="hung", threshold=1.0)

    def ScoreStream(self, request_iterator, context):
        for _ in request_iterator:  # read on, answer nothing, until the client cancels
            pass
        return iter(())


@pytest.fixture
def hung_engine():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    scoring_pb2_grpc.add_AnomalyScorerServicer_to_server(HungScorer(), server)
    health_servicer = health.HealthServicer()
    health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(grace=None).wait()


def test_engine_that_never_answers_is_reported_not_waited_for(hung_engine, producers, tmp_path):
    output = tmp_path / "results.csv"
    flags = ("--answer-timeout", "1", "--max-retry-seconds", "2")
    producer = producers(hung_engine, output, *flags)
    started = time.monotonic()
    code, stdout = producer.finish(timeout=45)  # a hang fails here (TimeoutExpired)
    elapsed = time.monotonic() - started
    assert code == 1, stdout + producer.text
    assert "answered     0 (0.00%)" in stdout and f"failed       {COUNT}" in stdout
    assert "no answer within 1 s (--answer-timeout)" in stdout
    assert "gave up after 2 s without an answer (--max-retry-seconds)" in stdout
    assert elapsed < 30, producer.text  # 1 s timeout + 2 s bound + start-up, not forever
