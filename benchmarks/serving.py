"""Serving throughput and latency, side by side in one run on the same model:

  - ceiling: in-process ONNX Runtime at 1 and 1024 vectors per call (one thread, no gRPC);
  - floor: a no-model gRPC echo of the same messages (benchmarks/echo_server.py);
  - the engine with 1 and 1024 vectors per message, unary and streaming, 1 worker and all.

    python benchmarks/serving.py --models-dir models [--seconds 3] [--clients 2]

Load comes from --clients separate processes (each 32 threads calling Score, or one stream with
32 messages in flight). Client and server share this machine's cores, so every
server figure here is a floor; "engine us/msg" is the engine's own CPU time per message.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort

from datasentinel.model_config import load_config
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc

IN_FLIGHT = 32
HERE = Path(__file__).resolve().parent


def ceiling(models_dir: Path, rows: int, seconds: float) -> float:
    config = load_config(models_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(models_dir / config.model_file), options, providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(0).normal(size=(rows, config.input_dim)).astype(np.float32)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {config.input_name: x})
        done += rows
    return done / (time.perf_counter() - start)


def request(rows: int, dim: int) -> pb.ScoreRequest:
    x = np.random.default_rng(rows).normal(size=(rows, dim)).astype("<f4")
    return pb.ScoreRequest(
        ids=range(rows), raw=pb.RawVectors(data=x.tobytes(), rows=rows, cols=dim)
    )


def _unary(target: str, message, seconds: float) -> list[float]:
    """IN_FLIGHT threads, each calling Score back to back."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.AnomalyScorerStub(channel)

        def caller() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                stub.Score(message)
                latencies.append(time.perf_counter() - start)

        threads = [threading.Thread(target=caller) for _ in range(IN_FLIGHT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return latencies


def _stream(target: str, message, seconds: float) -> list[float]:
    """One ScoreStream with at most IN_FLIGHT messages unanswered."""
    slots = threading.Semaphore(IN_FLIGHT)
    sent: list[float] = []
    deadline = time.perf_counter() + seconds

    def requests():
        while time.perf_counter() < deadline:
            slots.acquire()
            sent.append(time.perf_counter())
            yield message

    latencies = []
    with grpc.insecure_channel(target) as channel:
        for reply in pb_grpc.AnomalyScorerStub(channel).ScoreStream(requests()):
            if reply.WhichOneof("outcome") != "result":
                raise RuntimeError(reply.error.message)
            latencies.append(time.perf_counter() - sent[len(latencies)])
            slots.release()
    return latencies


def _client(mode: str, target: str, rows: int, dim: int, seconds: float, out) -> None:
    run = _unary if mode == "unary" else _stream
    out.put(run(target, request(rows, dim), seconds))


def load(mode: str, target: str, rows: int, dim: int, seconds: float, clients: int) -> dict:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [
        context.Process(target=_client, args=(mode, target, rows, dim, seconds, out))
        for _ in range(clients)
    ]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    latencies = [x for _ in procs for x in out.get()]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "messages": len(latencies),
        "vectors_per_s": len(latencies) * rows / seconds,
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
        "elapsed": elapsed,
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux)."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids(process: subprocess.Popen) -> list[int]:
    pid = process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def start(command: list[str], ready: str) -> tuple[subprocess.Popen, int]:
    """Starts a server that logs ``listening on HOST:PORT`` (or is given its port) and waits
    until it logs ``ready`` as often as it has workers."""
    process = subprocess.Popen(command, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True)
    port, workers, serving = 0, 1, 0
    for line in process.stdout:
        if match := re.search(r"listening on [\d.]+:(\d+)(?: with (\d+) workers)?", line):
            port = port or int(match.group(1))
            workers = int(match.group(2) or workers)
        serving += ready in line
        if serving >= workers and (port or "echo" in ready):
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, port
    raise SystemExit(f"{command} failed to start (exit {process.wait()})")


def engine(models_dir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "engine", "--models-dir", str(models_dir)]
    command += ["--bind-host", "127.0.0.1", "--port", "0", "--metrics-port", "-1"]
    command += ["--workers", str(workers), "--reload-poll-seconds", "0"]
    return start(command, " SERVING ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CASES = [("stream", 1), ("stream", 1024), ("unary", 1), ("unary", 1024)]


def measure_server(process, port, dim, seconds, clients) -> dict:
    target = f"127.0.0.1:{port}"
    load("stream", target, 1, dim, 0.5, 1)  # warm up
    results = {}
    for mode, rows in CASES:
        before = cpu_seconds(server_pids(process))
        result = load(mode, target, rows, dim, seconds, clients)
        result["server_us_per_msg"] = (
            (cpu_seconds(server_pids(process)) - before) / result["messages"] * 1e6
        )
        results[(mode, rows)] = result
    return results


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    args = parser.parse_args()
    dim = load_config(args.models_dir).input_dim
    cores = os.cpu_count() or 1
    ceil = {rows: ceiling(args.models_dir, rows, args.seconds) for rows in (1, 1024)}

    port = free_port()
    echo, _ = start([sys.executable, str(HERE / "echo_server.py"), str(port)], "echo serving")
    try:
        floor = measure_server(echo, port, dim, args.seconds, args.clients)
    finally:
        stop(echo)
    runs = {}
    for workers in sorted({1, cores}):
        process, port = engine(args.models_dir, workers)
        try:
            runs[workers] = measure_server(process, port, dim, args.seconds, args.clients)
        finally:
            stop(process)
    report(args, dim, cores, ceil, floor, runs)
    return 0


def report(args, dim, cores, ceil, floor, runs) -> None:
    print(
        f"model {args.models_dir} ({dim} features); {cores} cores shared by server and "
        f"{args.clients} client processes; {args.seconds:g} s per case"
    )
    print(
        f"ceiling (in-process ONNX Runtime, 1 thread): {ceil[1]:,.0f} vectors/s at 1 per call, "
        f"{ceil[1024]:,.0f} at 1024"
    )
    header = ("vectors/s", "p50 ms", "p99 ms", "/ceiling", "/floor", "server us/msg")
    print(f"\n{'server':10}{'case':16}" + "".join(f"{h:>14}" for h in header))
    rows = [("echo", floor)] + [(f"engine x{w}", r) for w, r in runs.items()]
    for name, results in rows:
        for (mode, n), r in results.items():
            vs_floor = r["vectors_per_s"] / floor[(mode, n)]["vectors_per_s"]
            cells = (
                f"{r['vectors_per_s']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['vectors_per_s'] / ceil[n]:.3f}x",
                f"{vs_floor:.2f}x",
                f"{r['server_us_per_msg']:,.0f}",
            )
            print(f"{name:10}{f'{mode} x{n}':16}" + "".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    sys.exit(main())
