"""Same-client comparison for benchmarks/serving.py (``--same-client``): Triton's own load
generator, perf_analyzer, drives the engine's Open Inference Protocol endpoint over gRPC exactly
as it drives Triton (it reads ModelMetadata and ModelConfig first, then sends ModelInfer), at
1, 16 and 64 calls in flight with 1 and 1024 vectors per call; and, given a tritonserver binary,
Triton serving the same model.onnx with its ONNX Runtime backend, in the same run, the two
servers taking turns case by case (interleaved rounds, medians), so that load from other work
on the machine falls on both alike.

perf_analyzer comes with the ``perf-analyzer`` wheel (glibc 2.38 and newer) or, on older systems
such as Debian 12, with the tritonclient 2.51 wheel: scripts/getPerfAnalyzer.sh installs it into
the venv either way.
"""

from __future__ import annotations

import csv
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from datasentinel.model_config import load_config

MODEL = "datasentinel"  # the engine's default --oip-model-name, and the Triton repository's name
IN_FLIGHT = (1, 16, 64)
ROWS = (1, 1024)


def find_perf_analyzer(given: str | None) -> str | None:
    """The binary given, else the venv's (scripts/getPerfAnalyzer.sh), else one on PATH."""
    if given:
        return given
    beside = Path(sys.executable).parent / "perf_analyzer"
    return str(beside) if beside.exists() else shutil.which("perf_analyzer")


def model_repository(models_dir: Path, root: Path, max_batch: int = 4096) -> Path:
    """A Triton model repository serving the trainer's model.onnx with the ONNX Runtime backend:
    the same batch limit as the engine's default ENGINE_MAX_BATCH_ROWS, Triton's dynamic batcher
    (the engine's greedy batcher's counterpart), one CPU instance; outputs are left to Triton's
    auto-complete from the ONNX file."""
    config = load_config(models_dir)
    version = root / MODEL / "1"
    version.mkdir(parents=True)
    shutil.copy(models_dir / config.model_file, version / "model.onnx")
    (root / MODEL / "config.pbtxt").write_text(
        pbtxt(config.input_name, config.input_dim, max_batch)
    )
    return root


def pbtxt(input_name: str, dim: int, max_batch: int) -> str:
    return (
        f'name: "{MODEL}"\nbackend: "onnxruntime"\nmax_batch_size: {max_batch}\n'
        f'input [ {{ name: "{input_name}" data_type: TYPE_FP32 dims: [ {dim} ] }} ]\n'
        "dynamic_batching { }\n"
        "instance_group [ { count: 1 kind: KIND_CPU } ]\n"
    )


def start_triton(binary: str, repository: Path) -> tuple[subprocess.Popen, int]:
    """tritonserver on a free gRPC port, HTTP and metrics off, once it says its gRPC service
    started. Triton takes no port 0, so the port is picked here (a benchmark on a machine of
    its own: the race with another process taking it in between is accepted)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [binary, "--model-repository", str(repository), "--grpc-port", str(port)]
    command += ["--allow-http", "false", "--allow-metrics", "false"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if "Started GRPCInferenceService" in line:
            return process, port
    raise SystemExit(f"{command} failed to start (exit {process.wait()})")


def input_data(models_dir: Path, path: Path, samples: int = 16) -> Path:
    """perf_analyzer's --input-data file: ``samples`` rows drawn like serving.py's requests
    (standard normal), one per call in turn, each repeated for every vector of a call.
    perf_analyzer's own "random" fills the tensor with random bits: overflowing magnitudes and
    NaN, which sent the engine down its non-finite and missing-value paths (1024-vector calls
    at 0.1M vectors/s against 0.9M with h2load's normal rows, 2026-12-03) while Triton's ONNX
    Runtime computes garbage as fast as anything: not the same work."""
    config = load_config(models_dir)
    rows = np.random.default_rng(0).normal(size=(samples, config.input_dim)).astype(np.float32)
    steps = [
        {config.input_name: {"content": row.tolist(), "shape": [config.input_dim]}} for row in rows
    ]
    path.write_text(json.dumps({"data": steps}))
    return path


def perf_analyzer(
    binary: str, port: int, rows: int, in_flight: int, workdir: Path, data: Path
) -> dict:
    """One perf_analyzer measurement of ModelInfer at ``in_flight`` concurrent calls of
    ``rows`` vectors from ``data`` (input_data()); shapes come from the server's
    ModelMetadata/ModelConfig, as for Triton. Raises with perf_analyzer's own output when it
    fails (it refuses a server whose metadata or config it cannot use)."""
    report = workdir / f"pa-{port}-{rows}-{in_flight}.csv"
    command = [binary, "-m", MODEL, "-i", "grpc", "-u", f"127.0.0.1:{port}", "-b", str(rows)]
    command += ["--input-data", str(data)]
    command += ["--concurrency-range", f"{in_flight}:{in_flight}", "-f", str(report)]
    # Three 2 s windows, averaged: perf_analyzer's stability test (3 windows in a row within s%)
    # failed at 50% on this shared machine (load average 7 on 2 cores), and the rounds' median
    # is what is reported, so it is as lenient as it goes.
    command += ["--measurement-interval", "2000", "-s", "100", "-r", "10"]
    started = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if run.returncode != 0 or not report.exists():
        raise RuntimeError(f"perf_analyzer failed ({run.returncode}):\n{run.stdout}{run.stderr}")
    return {**pa_figures(report.read_text(), rows), "wall_s": time.perf_counter() - started}


def pa_figures(report: str, rows: int) -> dict:
    """Throughput and latency from perf_analyzer's CSV report (-f), matched by column name;
    its latencies are in microseconds, its 'Inferences/Second' counts vectors (batch x calls)."""
    (row,) = list(csv.DictReader(report.splitlines()))
    vectors = float(row["Inferences/Second"])
    return {
        "vectors_per_s": vectors,
        "calls_per_s": vectors / rows,
        "p50_ms": float(row["p50 latency"]) / 1e3,
        "p99_ms": float(row["p99 latency"]) / 1e3,
    }


def compare(servers: dict, binary: str, workdir: Path, repeats: int, cpu, data: Path) -> dict:
    """Every case on every server in turn, ``repeats`` rounds; medians. ``servers``: name ->
    (process, port); ``cpu(process)``: the server's CPU seconds so far. Server CPU per call is
    that CPU over the whole perf_analyzer run divided by its calls/s times the run's length
    (its start-up and idle gaps between windows count as calls: an estimate, alike for both)."""
    runs: dict = {(name, r, c): [] for name in servers for r in ROWS for c in IN_FLIGHT}
    for _ in range(repeats):
        for rows in ROWS:
            for in_flight in IN_FLIGHT:
                for name, (process, port) in servers.items():
                    before = cpu(process)
                    result = perf_analyzer(binary, port, rows, in_flight, workdir, data)
                    spent = cpu(process) - before
                    calls = result["calls_per_s"] * result["wall_s"]
                    result["server_us_per_call"] = spent / calls * 1e6
                    runs[(name, rows, in_flight)].append(result)
    return {key: _median(results) for key, results in runs.items()}


def _median(results: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def report(results: dict, triton_note: str) -> None:
    """One line per case and server; the ratio to the engine of the same case."""
    print(
        "\nsame client (perf_analyzer, gRPC ModelInfer, concurrency mode); medians of "
        "interleaved rounds"
    )
    print(f"  {triton_note}")
    header = ("calls/s", "vectors/s", "p50 ms", "p99 ms", "vs engine", "server us")
    print(f"{'server':10}{'vectors':>8}{'in flight':>10}" + "".join(f"{h:>12}" for h in header))
    for (name, rows, in_flight), r in results.items():
        base = results[("engine", rows, in_flight)]
        cells = (
            f"{r['calls_per_s']:,.0f}",
            f"{r['vectors_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['vectors_per_s'] / base['vectors_per_s']:.2f}x",
            f"{r['server_us_per_call']:,.0f}",
        )
        print(f"{name:10}{rows:>8}{in_flight:>10}" + "".join(f"{c:>12}" for c in cells))
