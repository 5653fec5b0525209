"""Serving throughput and latency, side by side in one run on the same model:

  - ceiling: in-process ONNX Runtime at 1 and 1024 vectors per call (one thread, no gRPC);
  - floor: a no-model gRPC echo of the same messages (benchmarks/echo_server.py);
  - the engine with 1 and 1024 vectors per message, unary and streaming, 1 worker and all;
  - the cost of security: one worker in plain text, with TLS, and with TLS + a bearer token
    (certificate and token made for the run with openssl), the same cases side by side;
  - with ``--baseline REV``: this engine beside the engine of an earlier revision (the cost of a
    change on the normal path, e.g. issue 18's call budgets), the same cases side by side;
  - REST beside gRPC (issue 21): one engine serving both, the same rows at 1 and 1024 vectors
    per call: our Score, the OIP's ModelInfer over gRPC, and the OIP's REST infer with JSON
    tensors and with the binary-data extension (tritonclient.http's default);
  - the cost of the per-row fields (issue 16), our API and the Open Inference Protocol at 1 and
    1024 vectors per call: today's answers (the same model served from a schema-2 config.json:
    no severity, no expected values), the same plus severity (the schema-3 config), and the same
    plus attribution (top_features=3; OIP: the top_features and top_feature_shares outputs).

    python benchmarks/serving.py --models-dir models
    python benchmarks/serving.py --models-dir models --security-only   # the security part alone
    python benchmarks/serving.py --models-dir models --fields-only     # the per-row fields alone
    python benchmarks/serving.py --models-dir models --baseline REV    # this code vs REV alone
    python benchmarks/serving.py --models-dir models --baseline REV --workers 2   # (beside echo)
    python benchmarks/serving.py --models-dir models --rest-only       # REST beside gRPC alone
    python benchmarks/serving.py --models-dir models --main-only       # ceiling, floor, engine
    python benchmarks/serving.py --models-dir models --same-client [--triton PATH]
    python benchmarks/serving.py --models-dir models --load-curve      # latency vs offered load

``--same-client``: perf_analyzer (Triton's client) against the engine's Open Inference Protocol
and, with ``--triton PATH`` to a tritonserver binary, against Triton serving the same
model.onnx, interleaved (benchmarks/same_client.py). ``--load-curve``: p50/p99 against offered
calls/s, open loop, engine beside the echo floor, table and picture (benchmarks/load_curve.py).

Load comes from h2load (Debian's nghttp2-client), a C HTTP/2 client (``--h1`` for REST, which is
HTTP/1.1: one call at a time per connection, so more connections): a unary call is a POST of
one length-prefixed message, a stream a POST of thousands, so the client costs little of the CPU
it shares with the server. "server us/msg" is the server's own CPU time per message.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort

from datasentinel.model_config import config_json, load_config
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.v1 import scoring_pb2 as pb

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


def framed(rows: int, dim: int, messages: int = 1, message: bytes | None = None) -> bytes:
    """``messages`` copies of one request (``message``, else a plain ScoreRequest of ``rows``
    vectors), each with gRPC's 5-byte length prefix: the HTTP/2 body of a unary call (1
    message) or of a whole client stream."""
    if message is None:
        message = score_request(rows, dim)
    return (b"\0" + struct.pack(">I", len(message)) + message) * messages


def vectors(rows: int, dim: int) -> np.ndarray:
    return np.random.default_rng(rows).normal(size=(rows, dim)).astype("<f4")


def score_request(rows: int, dim: int, **fields) -> bytes:
    raw = pb.RawVectors(data=vectors(rows, dim).tobytes(), rows=rows, cols=dim)
    return pb.ScoreRequest(ids=range(rows), raw=raw, **fields).SerializeToString()


def infer_request(rows: int, dim: int, outputs: tuple[str, ...] = ()) -> bytes:
    """An OIP ModelInferRequest with raw bytes, as tritonclient sends them."""
    tensor = oip.ModelInferRequest.InferInputTensor(
        name="features", datatype="FP32", shape=[rows, dim]
    )
    return oip.ModelInferRequest(
        model_name="datasentinel",
        inputs=[tensor],
        raw_input_contents=[vectors(rows, dim).tobytes()],
        outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in outputs],
    ).SerializeToString()


# (rpc, vectors per message, messages per call, calls, connections, calls in flight each)
CASES = [
    ("Score", 1, 1, 20000, 4, 16),
    ("Score", 1024, 1, 1000, 4, 4),
    ("ScoreStream", 1, 2000, 16, 4, 1),
    ("ScoreStream", 1024, 64, 32, 4, 1),
]


@dataclass(frozen=True)
class Client:
    """How h2load reaches the server: https (TLS, certificate not verified: a load generator)
    and extra headers (the token)."""

    scheme: str = "http"
    headers: tuple[str, ...] = ()


PLAIN = Client()


def h2load(
    port: int,
    case: tuple,
    dim: int,
    workdir: Path,
    client: Client = PLAIN,
    message: bytes | None = None,
    service: str = "datasentinel.v1.AnomalyScorer",
) -> dict:
    """Drives one case with h2load (a C HTTP/2 load generator, so the client costs little CPU).
    A stream's latency is the whole stream's, so only unary calls report p50/p99. Connections
    stay open for the whole case, so TLS handshakes are not in the figures (4 per case).
    ``message``: the request to send (default: a plain ScoreRequest); ``service``: its gRPC
    service."""
    rpc, rows, per_call, calls, connections, in_flight = case
    body, log = workdir / f"{rpc}-{rows}.bin", workdir / f"{rpc}-{rows}.log"
    body.write_bytes(framed(rows, dim, per_call, message))
    command = ["h2load", "-n", str(calls), "-c", str(connections), "-m", str(in_flight)]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    for header in client.headers:
        command += ["-H", header]
    command += ["-d", str(body), "--log-file", str(log)]
    command += [f"{client.scheme}://127.0.0.1:{port}/{service}/{rpc}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _h2load_figures(out, log, calls, per_call, rows)


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


def start(
    command: list[str], ready: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int]:
    """Starts a server that logs ``listening on HOST:PORT`` and waits until it logs ``ready``
    as often as it has workers."""
    process = subprocess.Popen(
        command,
        stderr=subprocess.STDOUT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    port, workers, serving = 0, 1, 0
    for line in process.stdout:
        if match := re.search(r"listening on [\d.]+:(\d+)(?: with (\d+) workers)?", line):
            port = port or int(match.group(1))
            workers = int(match.group(2) or workers)
        serving += ready in line
        if serving >= workers and port:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, port
    raise SystemExit(f"{command} failed to start (exit {process.wait()})")


def engine(
    models_dir: Path, workers: int, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, int]:
    command = [sys.executable, "-m", "datasentinel.engine", "--models-dir", str(models_dir), *extra]
    command += ["--bind-host", "127.0.0.1", "--port", "0", "--metrics-port", "-1"]
    command += ["--workers", str(workers), "--reload-poll-seconds", "0"]
    return start(command, " SERVING ", env)


# (label, transport, vectors per call, calls, connections, calls in flight each); REST is HTTP/1.1
# (one call at a time per connection): as many connections as gRPC has calls in flight.
REST_CASES = (
    ("gRPC Score", "grpc-ours", 1, 20000, 4, 16),
    ("gRPC ModelInfer", "grpc-oip", 1, 20000, 4, 16),
    ("REST JSON", "rest-json", 1, 20000, 64, 1),
    ("REST binary", "rest-binary", 1, 20000, 64, 1),
    ("gRPC Score", "grpc-ours", 1024, 1000, 4, 4),
    ("gRPC ModelInfer", "grpc-oip", 1024, 1000, 4, 4),
    ("REST JSON", "rest-json", 1024, 1000, 16, 1),
    ("REST binary", "rest-binary", 1024, 1000, 16, 1),
)


def rest_body(rows: int, dim: int, binary: bool) -> tuple[bytes, list[str]]:
    """An OIP REST infer body (JSON tensors, or Triton's binary-data extension) and its
    headers: what curl or tritonclient.http send."""
    x = vectors(rows, dim)
    tensor = {"name": "features", "datatype": "FP32", "shape": [rows, dim]}
    if not binary:
        tensor["data"] = x.tolist()
        return json.dumps({"inputs": [tensor]}).encode(), ["content-type: application/json"]
    tensor["parameters"] = {"binary_data_size": x.nbytes}
    wanted = [{"name": n, "parameters": {"binary_data": True}} for n in ("score", "is_anomaly")]
    header = json.dumps({"inputs": [tensor], "outputs": wanted}).encode()
    return header + x.tobytes(), [
        "content-type: application/octet-stream",
        f"inference-header-content-length: {len(header)}",
    ]


def rest_load(port: int, case: tuple, dim: int, workdir: Path) -> dict:
    """Drives one REST case with ``h2load --h1``; like h2load(), a failed call (any non-2xx)
    fails the run."""
    _, transport, rows, calls, connections, in_flight = case
    body, headers = rest_body(rows, dim, transport == "rest-binary")
    path, log = workdir / f"{transport}-{rows}.bin", workdir / f"{transport}-{rows}.log"
    path.write_bytes(body)
    command = ["h2load", "--h1", "-n", str(calls), "-c", str(connections), "-m", str(in_flight)]
    for header in headers:
        command += ["-H", header]
    command += ["-d", str(path), "--log-file", str(log)]
    command += [f"http://127.0.0.1:{port}/v2/models/datasentinel/infer"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return _h2load_figures(out, log, calls, 1, rows)


def _h2load_figures(out: str, log: Path, calls: int, per_call: int, rows: int) -> dict:
    seconds = float(re.search(r"finished in ([\d.]+)(m?s)", out).group(1))
    seconds /= 1000 if re.search(r"finished in [\d.]+ms", out) else 1
    done = int(re.search(r"(\d+) succeeded", out).group(1))
    if done != calls:
        raise RuntimeError(f"h2load: only {done} of {calls} calls succeeded:\n{out}")
    latencies = sorted(int(line.split()[2]) / 1e3 for line in log.read_text().splitlines())
    unary = per_call == 1
    return {
        "messages": calls * per_call,
        "vectors_per_s": calls * per_call * rows / seconds,
        "p50_ms": statistics.median(latencies) if unary else float("nan"),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] if unary else float("nan"),
    }


def rest_engine(models_dir: Path) -> tuple[subprocess.Popen, int, int]:
    """One worker serving gRPC and REST; its process, gRPC port and REST port."""
    command = [sys.executable, "-m", "datasentinel.engine", "--models-dir", str(models_dir)]
    command += ["--bind-host", "127.0.0.1", "--port", "0", "--http-port", "0"]
    command += ["--metrics-port", "-1", "--workers", "1", "--reload-poll-seconds", "0"]
    process = subprocess.Popen(command, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True)
    rest = 0
    for line in process.stdout:
        if match := re.search(r"REST on http://[\d.]+:(\d+)/v2", line):
            rest = int(match.group(1))
        if match := re.search(r"listening on [\d.]+:(\d+)", line):
            grpc_port = int(match.group(1))
        if " SERVING " in line and rest:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, grpc_port, rest
    raise SystemExit(f"{command} failed to start (exit {process.wait()})")


def measure_rest(models_dir: Path, dim: int, workdir: Path, repeats: int) -> dict:
    """One engine, both transports; each case in turn, ``repeats`` rounds, medians."""
    process, grpc_port, rest_port = rest_engine(models_dir)
    try:
        h2load(grpc_port, ("ScoreStream", 1, 200, 4, 2, 1), dim, workdir)  # warm up
        rest_load(rest_port, ("", "rest-json", 1, 200, 2, 1), dim, workdir)
        check_answer(grpc_port, f"/{OIP}/ModelInfer", infer_request(2, dim))
        runs: dict = {(c[0], c[2]): [] for c in REST_CASES}
        for _ in range(repeats):
            for case in REST_CASES:
                label, transport, rows, calls, connections, in_flight = case
                before = cpu_seconds(server_pids(process))
                if transport.startswith("rest"):
                    result = rest_load(rest_port, case, dim, workdir)
                else:
                    rpc, service, message = (
                        ("Score", OURS, None)
                        if transport == "grpc-ours"
                        else ("ModelInfer", OIP, infer_request(rows, dim))
                    )
                    grpc_case = (rpc, rows, 1, calls, connections, in_flight)
                    result = h2load(
                        grpc_port, grpc_case, dim, workdir, message=message, service=service
                    )
                spent = cpu_seconds(server_pids(process)) - before
                result["server_us_per_msg"] = spent / result["messages"] * 1e6
                runs[(label, rows)].append(result)
    finally:
        stop(process)
    return {key: _median(results) for key, results in runs.items()}


def report_rest(runs: dict) -> None:
    print(
        "\nREST beside gRPC (issue 21): one engine, 1 worker, both ports; unary calls; "
        "REST over HTTP/1.1 (h2load --h1), gRPC over HTTP/2; medians"
    )
    header = ("vectors/s", "p50 ms", "p99 ms", "vs Score", "server us/msg")
    print(f"{'transport':18}{'vectors':>8}" + "".join(f"{h:>14}" for h in header))
    for (label, rows), r in runs.items():
        base = runs[("gRPC Score", rows)]
        cells = (
            f"{r['vectors_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['vectors_per_s'] / base['vectors_per_s']:.2f}x",
            f"{r['server_us_per_msg']:,.0f}",
        )
        print(f"{label:18}{rows:>8}" + "".join(f"{c:>14}" for c in cells))


def measure_server(process, port, dim, workdir: Path, repeats: int, client=PLAIN) -> dict:
    """Each case ``repeats`` times; the run with the median throughput is reported (this
    machine is shared: single runs of the same case differed by up to 30%)."""
    h2load(port, ("ScoreStream", 1, 200, 4, 2, 1), dim, workdir, client)  # warm up
    results = {}
    for case in CASES:
        runs = []
        for _ in range(repeats):
            before = cpu_seconds(server_pids(process))
            result = h2load(port, case, dim, workdir, client)
            spent = cpu_seconds(server_pids(process)) - before
            result["server_us_per_msg"] = spent / result["messages"] * 1e6
            runs.append(result)
        runs.sort(key=lambda r: r["vectors_per_s"])
        results[(case[0], case[1])] = runs[len(runs) // 2]
    return results


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(30)


def make_secrets(workdir: Path) -> tuple[Path, Path, Path]:
    """A self-signed certificate for 127.0.0.1 (EC P-256, as scripts/docker/makeSecrets.sh
    makes) and a token file, for this run only."""
    cert, key, tokens = workdir / "server.pem", workdir / "server.key", workdir / "tokens"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=bench",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    tokens.write_text(secrets.token_urlsafe(32) + "\n")
    return cert, key, tokens


def measure_security(models_dir: Path, dim: int, workdir: Path, repeats: int) -> dict:
    """One worker in plain text, with TLS, and with TLS + token: the three engines run side by
    side (idle ones cost nothing) and each case is measured on each in turn, ``repeats`` rounds,
    so load from outside falls on all three alike; medians reported."""
    cert, key, tokens = make_secrets(workdir)
    tls_args = ("--tls-cert-file", str(cert), "--tls-key-file", str(key))
    token_header = f"authorization: Bearer {tokens.read_text().strip()}"
    setups = {
        "plain": ((), PLAIN),
        "TLS": (tls_args, Client("https")),
        "TLS+token": (
            (*tls_args, "--auth-token-file", str(tokens)),
            Client("https", (token_header,)),
        ),
    }
    servers = {}
    try:
        for name, (args, client) in setups.items():
            servers[name] = (*engine(models_dir, 1, *args), client)
        return round_robin(servers, dim, workdir, repeats)
    finally:
        for process, _, _ in servers.values():
            stop(process)


def round_robin(servers: dict, dim: int, workdir: Path, repeats: int) -> dict:
    """Each case on each server in turn, ``repeats`` rounds, so that load from outside falls on
    all alike; medians. ``servers``: name -> (process, port, client)."""
    for _, port, client in servers.values():  # warm up
        h2load(port, ("ScoreStream", 1, 200, 4, 2, 1), dim, workdir, client)
    runs: dict = {name: {(c[0], c[1]): [] for c in CASES} for name in servers}
    for _ in range(repeats):
        for case in CASES:
            for name, (process, port, client) in servers.items():
                before = cpu_seconds(server_pids(process))
                result = h2load(port, case, dim, workdir, client)
                spent = cpu_seconds(server_pids(process)) - before
                result["server_us_per_msg"] = spent / result["messages"] * 1e6
                runs[name][(case[0], case[1])].append(result)
    return {name: {key: _median(results) for key, results in cases.items()}
            for name, cases in runs.items()}  # fmt: skip


def measure_baseline(
    models_dir: Path, dim: int, workdir: Path, repeats: int, rev: str, workers: int = 1
) -> dict:
    """The echo floor, this engine and revision ``rev``'s, side by side, plain text, each
    engine with ``workers`` workers: "vs 1st" is then each one's ratio to the floor."""
    from baseline import baseline_env

    envs = {"this code": {}, f"rev {rev}": baseline_env(rev, workdir)}
    servers = {}
    try:
        echo = start([sys.executable, str(HERE / "echo_server.py")], " SERVING ")
        servers["echo"] = (*echo, PLAIN)
        for name, env in envs.items():
            servers[name] = (*engine(models_dir, workers, env=env), PLAIN)
        return round_robin(servers, dim, workdir, repeats)
    finally:
        for process, _, _ in servers.values():
            stop(process)


OURS, OIP = "datasentinel.v1.AnomalyScorer", "inference.GRPCInferenceService"
ATTRIBUTION = ("top_features", "top_feature_shares")
SEVERITY = ("score", "is_anomaly", "severity")
# (label, engine, service, rpc, request builder(rows, dim, severity: the model has a table)):
# today's answers, + severity, + attribution, for our API and for the OIP, in this order in each
# round; "today again", today's case measured once more at the end, shows what the order and
# the shared machine alone make of the same case.
FIELD_CASES = (
    ("ours: today", "today", OURS, "Score", lambda rows, dim, _: score_request(rows, dim)),
    ("ours: +severity", "v3", OURS, "Score", lambda rows, dim, _: score_request(rows, dim)),
    (
        "ours: +top 3",
        "v3",
        OURS,
        "Score",
        lambda rows, dim, _: score_request(rows, dim, top_features=min(3, dim)),
    ),
    ("ours: today again", "today", OURS, "Score", lambda rows, dim, _: score_request(rows, dim)),
    ("OIP: today", "today", OIP, "ModelInfer", lambda rows, dim, _: infer_request(rows, dim)),
    (
        "OIP: +severity",
        "v3",
        OIP,
        "ModelInfer",
        lambda rows, dim, severity: infer_request(rows, dim, SEVERITY[: 2 + severity]),
    ),
    (
        "OIP: +top 3",
        "v3",
        OIP,
        "ModelInfer",
        lambda rows, dim, severity: infer_request(
            rows, dim, SEVERITY[: 2 + severity] + ATTRIBUTION
        ),
    ),
    (
        "OIP: today again",
        "today",
        OIP,
        "ModelInfer",
        lambda rows, dim, _: infer_request(rows, dim),
    ),
)
# (vectors per call, calls, connections, calls in flight each), unary.
FIELD_SIZES = ((1, 20000, 4, 16), (1024, 1000, 4, 4))


def today_copy(models_dir: Path, workdir: Path) -> tuple[Path, list[str]]:
    """The model served as before issue 16: the same ONNX file with its config written as
    schema 2 (no severity table, no expected output, NaN refused). Notes on what the model
    lacks, for the report."""
    config = load_config(models_dir)
    notes = []
    if config.schema_version < 3:
        notes.append(f"schema {config.schema_version}: no severity, '+severity' = today")
    if config.expected_output is None:
        notes.append("no 'expected' output: attribution carries NaN expected values")
    if config.severity is None and config.schema_version >= 3:
        notes.append("no severity table: '+severity' = today")
    today = workdir / "today-model"
    today.mkdir()
    shutil.copy(models_dir / config.model_file, today / config.model_file)
    text = config_json(config.model_copy(update={"schema_version": min(2, config.schema_version)}))
    (today / "config.json").write_text(text + "\n")
    return today, notes


def measure_fields(models_dir: Path, dim: int, workdir: Path, repeats: int) -> tuple[dict, list]:
    """Two one-worker engines side by side, the model as before issue 16 and as it is; every
    case on its engine in turn, ``repeats`` rounds, medians (as measure_security)."""
    today, notes = today_copy(models_dir, workdir)
    severity = load_config(models_dir).severity is not None
    servers = {}
    try:
        servers["today"] = engine(today, 1)
        servers["v3"] = engine(models_dir, 1)
        for _, port in servers.values():  # warm up
            h2load(port, ("ScoreStream", 1, 200, 4, 2, 1), dim, workdir)
        for _, name, service, rpc, build in FIELD_CASES:  # h2load counts gRPC errors as done
            check_answer(servers[name][1], f"/{service}/{rpc}", build(2, dim, severity))
        runs: dict = {(c[0], size[0]): [] for c in FIELD_CASES for size in FIELD_SIZES}
        for _ in range(repeats):
            for rows, calls, connections, in_flight in FIELD_SIZES:
                for label, name, service, rpc, build in FIELD_CASES:
                    process, port = servers[name]
                    case = (rpc, rows, 1, calls, connections, in_flight)
                    before = cpu_seconds(server_pids(process))
                    message = build(rows, dim, severity)
                    result = h2load(port, case, dim, workdir, message=message, service=service)
                    spent = cpu_seconds(server_pids(process)) - before
                    result["server_us_per_msg"] = spent / result["messages"] * 1e6
                    runs[(label, rows)].append(result)
    finally:
        for process, _ in servers.values():
            stop(process)
    return {key: _median(results) for key, results in runs.items()}, notes


def check_answer(port: int, method: str, message: bytes) -> None:
    """One call with gRPC itself: raises when the engine refuses the request (h2load would
    count a gRPC error, an HTTP 200 with an error status, as a success)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method, lambda b: b, lambda b: b)
        call(message, timeout=30)


def report_fields(runs: dict, notes: list[str]) -> None:
    """Each case beside today's answers of the same API and size."""
    print(
        "\nper-row fields (issue 16): 1 worker each, unary, measured in turn; medians; "
        "'today' = the same model from a schema-2 config.json; 'today again' = the same case "
        "measured last in each round (the difference is noise)"
    )
    for note in notes:
        print(f"  note: {note}")
    header = ("vectors/s", "p50 ms", "p99 ms", "vs today", "server us/msg", "+us/msg")
    print(f"{'answer':19}{'vectors':>8}" + "".join(f"{h:>14}" for h in header))
    for rows, *_ in FIELD_SIZES:
        for label, *_ in FIELD_CASES:
            r = runs[(label, rows)]
            base = runs[(label.split(":")[0] + ": today", rows)]
            cells = (
                f"{r['vectors_per_s']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['vectors_per_s'] / base['vectors_per_s']:.2f}x",
                f"{r['server_us_per_msg']:,.0f}",
                f"{r['server_us_per_msg'] - base['server_us_per_msg']:+,.0f}",
            )
            print(f"{label:19}{rows:>8}" + "".join(f"{c:>14}" for c in cells))


def _median(results: list[dict]) -> dict:
    """Per figure, the median over the rounds."""
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--seconds", type=float, default=3.0, help="per ceiling measurement")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument(
        "--security-only", action="store_true", help="only the plain/TLS/TLS+token comparison"
    )
    parser.add_argument(
        "--fields-only",
        action="store_true",
        help="only the per-row fields comparison (severity, top features; issue 16)",
    )
    parser.add_argument("--rest-only", action="store_true", help="only REST beside gRPC (issue 21)")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="only this engine beside the engine of git revision REV (the cost of a change) "
        "and the echo floor",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="engine workers with --baseline (default 1)"
    )
    parser.add_argument(
        "--main-only", action="store_true", help="only the ceiling / echo floor / engine table"
    )
    parser.add_argument(
        "--same-client",
        action="store_true",
        help="only perf_analyzer against the engine (and Triton with --triton), interleaved",
    )
    parser.add_argument("--perf-analyzer", metavar="PATH", help="perf_analyzer binary to use")
    parser.add_argument(
        "--triton", metavar="PATH", help="a tritonserver binary: serve the same model.onnx beside"
    )
    parser.add_argument(
        "--load-curve",
        action="store_true",
        help="only p50/p99 against offered load (open loop), engine beside the echo floor",
    )
    parser.add_argument(
        "--curve-seconds", type=float, default=3.0, help="per point of the load curve"
    )
    parser.add_argument(
        "--plot",
        type=Path,
        default=HERE / "serving_latency.png",
        help="where --load-curve writes its picture",
    )
    args = parser.parse_args()
    if shutil.which("h2load") is None and not args.same_client:
        raise SystemExit("h2load not found: apt-get install nghttp2-client")
    dim = load_config(args.models_dir).input_dim
    if args.same_client:
        return run_same_client(args, dim)
    if args.load_curve:
        return run_load_curve(args, dim)
    if args.security_only:
        with tempfile.TemporaryDirectory() as workdir:
            security = measure_security(args.models_dir, dim, Path(workdir), args.repeats)
        report_security(security)
        return 0
    if args.rest_only:
        with tempfile.TemporaryDirectory() as workdir:
            rest = measure_rest(args.models_dir, dim, Path(workdir), args.repeats)
        report_rest(rest)
        return 0
    if args.baseline:
        with tempfile.TemporaryDirectory() as workdir:
            runs = measure_baseline(
                args.models_dir, dim, Path(workdir), args.repeats, args.baseline, args.workers
            )
        title = f"echo (1 process), this code, rev {args.baseline} ({args.workers} worker(s) each)"
        report_security(runs, title)
        return 0
    if args.fields_only:
        with tempfile.TemporaryDirectory() as workdir:
            fields, notes = measure_fields(args.models_dir, dim, Path(workdir), args.repeats)
        report_fields(fields, notes)
        return 0
    cores = os.cpu_count() or 1
    ceil = {rows: ceiling(args.models_dir, rows, args.seconds) for rows in (1, 1024)}

    with tempfile.TemporaryDirectory() as workdir:
        echo, port = start([sys.executable, str(HERE / "echo_server.py")], " SERVING ")
        try:
            floor = measure_server(echo, port, dim, Path(workdir), args.repeats)
        finally:
            stop(echo)
        runs = {}
        for workers in sorted({1, cores}):
            process, port = engine(args.models_dir, workers)
            try:
                runs[workers] = measure_server(process, port, dim, Path(workdir), args.repeats)
            finally:
                stop(process)
        if args.main_only:
            report(args, dim, cores, ceil, floor, runs)
            return 0
        security = measure_security(args.models_dir, dim, Path(workdir), args.repeats)
        fields, notes = measure_fields(args.models_dir, dim, Path(workdir), args.repeats)
        rest = measure_rest(args.models_dir, dim, Path(workdir), args.repeats)
    report(args, dim, cores, ceil, floor, runs)
    report_security(security)
    report_fields(fields, notes)
    report_rest(rest)
    return 0


def run_same_client(args, dim: int) -> int:
    """perf_analyzer against the engine (one worker per core, its default) and, when given,
    Triton on the same model.onnx; interleaved rounds, medians."""
    import same_client

    binary = same_client.find_perf_analyzer(args.perf_analyzer)
    if binary is None:
        raise SystemExit("perf_analyzer not found: run scripts/getPerfAnalyzer.sh")
    cores = os.cpu_count() or 1
    servers = {}
    with tempfile.TemporaryDirectory() as workdir:
        try:
            servers["engine"] = engine(args.models_dir, cores)
            check_answer(servers["engine"][1], f"/{OIP}/ModelInfer", infer_request(2, dim))
            if args.triton:
                repository = same_client.model_repository(args.models_dir, Path(workdir) / "repo")
                servers["triton"] = same_client.start_triton(args.triton, repository)
                note = f"Triton: {args.triton}, the same model.onnx (onnxruntime backend)"
            else:
                note = "Triton: not given (--triton PATH to a tritonserver binary): engine alone"
            cpu = lambda process: cpu_seconds(server_pids(process))  # noqa: E731
            data = same_client.input_data(args.models_dir, Path(workdir) / "input.json")
            results = same_client.compare(servers, binary, Path(workdir), args.repeats, cpu, data)
        finally:
            for process, _ in servers.values():
                stop(process)
    print(f"model {args.models_dir}; engine: {cores} workers; {load_average()}")
    same_client.report(results, note)
    return 0


def run_load_curve(args, dim: int) -> int:
    """The engine (1 worker) and the echo floor (1 process) side by side, point by point."""
    import load_curve

    servers = {}
    with tempfile.TemporaryDirectory() as workdir:
        bodies = {}
        for rows in load_curve.RATES:
            bodies[rows] = Path(workdir) / f"score-{rows}.bin"
            bodies[rows].write_bytes(framed(rows, dim))
        try:
            servers["engine x1"] = engine(args.models_dir, 1)
            servers["echo"] = start([sys.executable, str(HERE / "echo_server.py")], " SERVING ")
            for _, port in servers.values():  # warm up, and a real answer (h2load counts
                h2load(port, ("ScoreStream", 1, 200, 4, 2, 1), dim, Path(workdir))  # errors)
                check_answer(port, f"/{OURS}/Score", score_request(2, dim))
            ports = {name: port for name, (_, port) in servers.items()}
            points = load_curve.curve(
                ports, bodies, args.curve_seconds, Path(workdir), args.repeats
            )
        finally:
            for process, _ in servers.values():
                stop(process)
    title = f"{args.models_dir} ({dim} features); {load_average()}"
    print(title)
    load_curve.report(points)
    load_curve.plot(points, args.plot, title)
    print(f"picture: {args.plot}")
    return 0


def load_average() -> str:
    """This shared machine's load while measuring: figures mean little without it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f}, {five:.1f}, {fifteen:.1f} on {os.cpu_count()} cores"


def report(args, dim, cores, ceil, floor, runs) -> None:
    print(
        f"model {args.models_dir} ({dim} features); {cores} cores shared by the server and "
        f"h2load (a C HTTP/2 client); {load_average()}"
    )
    print(
        f"ceiling (in-process ONNX Runtime, 1 thread): {ceil[1]:,.0f} vectors/s at 1 per call, "
        f"{ceil[1024]:,.0f} at 1024"
    )
    header = ("vectors/s", "p50 ms", "p99 ms", "/ceiling", "/floor", "server us/msg")
    print(f"\n{'server':10}{'case':18}" + "".join(f"{h:>14}" for h in header))
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
            print(f"{name:10}{f'{mode} x{n}':18}" + "".join(f"{c:>14}" for c in cells))


def report_security(runs: dict, title: str = "security: 1 worker each") -> None:
    """Throughput and server CPU per message of each setup, and the difference to the first."""
    print(
        f"\n{title}; measured in turn; h2load over 4 long-lived connections "
        "(handshakes not counted); medians"
    )
    header = ("vectors/s", "p50 ms", "p99 ms", "vs 1st", "server us/msg", "+us/msg")
    print(f"{'setup':11}{'case':18}" + "".join(f"{h:>14}" for h in header))
    plain = next(iter(runs.values()))
    for name, results in runs.items():
        for key, r in results.items():
            base = plain[key]
            cells = (
                f"{r['vectors_per_s']:,.0f}",
                f"{r['p50_ms']:.2f}",
                f"{r['p99_ms']:.2f}",
                f"{r['vectors_per_s'] / base['vectors_per_s']:.2f}x",
                f"{r['server_us_per_msg']:,.0f}",
                f"{r['server_us_per_msg'] - base['server_us_per_msg']:+,.0f}",
            )
            print(f"{name:11}{f'{key[0]} x{key[1]}':18}" + "".join(f"{c:>14}" for c in cells))


if __name__ == "__main__":
    sys.exit(main())
