"""Serving throughput: in-process ONNX Runtime (the ceiling) vs the engine over gRPC.

    python benchmarks/serving.py --models-dir models [--seconds 5]

Starts a real engine on a free port, then measures, on the same model:
  - in-process ORT at 1 and 1024 vectors per call (the ceiling: no gRPC at all);
  - ScoreStream at 1 and 1024 vectors per message (one client stream, pipelined);
  - Score (unary) at 1 vector per call from several client threads.
Client and server share this machine's cores, so the figures are a floor for the engine.
Prints vectors/s, messages/s, p50/p99 message latency and the ratio to the ceiling.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort

from datasentinel.model_config import load_config
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


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


def stream(stub, rows: int, dim: int, seconds: float, window: int = 32) -> dict:
    """One ScoreStream with at most ``window`` messages unanswered."""
    message = request(rows, dim)
    slots = threading.Semaphore(window)
    sent_at: list[float] = []
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def requests():
        while time.perf_counter() < deadline:
            slots.acquire()
            sent_at.append(time.perf_counter())
            yield message

    start = time.perf_counter()
    for i, reply in enumerate(stub.ScoreStream(requests())):
        latencies.append(time.perf_counter() - sent_at[i])
        assert reply.WhichOneof("outcome") == "result", reply.error.message
        slots.release()
    elapsed = time.perf_counter() - start
    return summary(len(latencies), rows, elapsed, latencies)


def unary(stub, dim: int, seconds: float, clients: int) -> dict:
    message = request(1, dim)
    deadline = time.perf_counter() + seconds

    def worker() -> list[float]:
        out = []
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            stub.Score(message)
            out.append(time.perf_counter() - t)
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(lambda _: worker(), range(clients)) for x in part]
    return summary(len(latencies), 1, time.perf_counter() - start, latencies)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(engine: subprocess.Popen, case, *args) -> dict:
    """Runs one case; adds the engine's CPU time per message, which tells whether the engine or
    the (Python) client is the bottleneck when both share the machine."""
    before = cpu_seconds(engine.pid)
    result = case(*args)
    result["engine_cpu_us_per_msg"] = (cpu_seconds(engine.pid) - before) / result["messages"] * 1e6
    return result


def summary(messages: int, rows: int, elapsed: float, latencies: list[float]) -> dict:
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "messages": messages,
        "vectors_per_s": messages * rows / elapsed,
        "messages_per_s": messages / elapsed,
        "p50_ms": cuts[49] * 1e3,
        "p99_ms": cuts[98] * 1e3,
    }


def start_engine(models_dir: Path) -> tuple[subprocess.Popen, int]:
    """Starts the engine on a free port; returns once it logs SERVING."""
    command = [sys.executable, "-m", "engine", "--models-dir", str(models_dir)]
    command += ["--bind-host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
    engine = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    port = 0
    for line in engine.stderr:
        if match := re.search(r"listening on [\d.]+:(\d+)", line):
            port = int(match.group(1))
        if " SERVING " in line and port:
            threading.Thread(target=engine.stderr.read, daemon=True).start()
            return engine, port
    raise SystemExit(f"engine failed to start (exit {engine.wait()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--clients", type=int, default=8, help="unary client threads")
    args = parser.parse_args()
    dim = load_config(args.models_dir).input_dim
    ceil = {rows: ceiling(args.models_dir, rows, args.seconds) for rows in (1, 1024)}
    engine, port = start_engine(args.models_dir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.AnomalyScorerStub(channel)
            stream(stub, 1, dim, 1.0)  # warm up
            results = {
                "stream, 1 vector/msg": (measured(engine, stream, stub, 1, dim, args.seconds), 1),
                "stream, 1024 vectors/msg": (
                    measured(engine, stream, stub, 1024, dim, args.seconds),
                    1024,
                ),
                f"unary, 1 vector, {args.clients} clients": (
                    measured(engine, unary, stub, dim, args.seconds, args.clients),
                    1,
                ),
            }
    finally:
        engine.terminate()
        engine.wait(30)
    print(f"model: {args.models_dir} ({dim} features); {os.cpu_count()} cores for client + engine")
    print(
        f"in-process ONNX Runtime ceiling: {ceil[1]:,.0f} vectors/s at batch 1, "
        f"{ceil[1024]:,.0f} vectors/s at batch 1024"
    )
    header = ("vectors/s", "msgs/s", "p50 ms", "p99 ms", "/ceiling", "engine us/msg")
    print(f"{'case':34}" + "".join(f"{h:>14}" for h in header))
    for name, (r, rows) in results.items():
        cells = (
            f"{r['vectors_per_s']:,.0f}",
            f"{r['messages_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['vectors_per_s'] / ceil[rows]:.3f}x",
            f"{r['engine_cpu_us_per_msg']:,.0f}",
        )
        print(f"{name:34}" + "".join(f"{c:>14}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
