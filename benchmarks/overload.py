"""Overload benchmark: p99 latency, shed share and engine memory from 1x to 64x the sustainable
number of concurrent callers, with the engine's limits on (the defaults) and off, side by side.

    .venv/bin/python benchmarks/overload.py                  # a tiny model built for the run
    .venv/bin/python benchmarks/overload.py --models-dir models

Loopback only, bounded (about 3 minutes; 5 with ``--baseline``). One engine process
(``--workers 1``); load comes from grpc.aio clients in two separate processes (this script,
``--client``) over 16 connections, each caller sending single-vector unary calls back to back with
a 1 s deadline. 1x is 64 callers, which saturates the engine here; then 4x, 16x and 64x (4096, the
issue's case). Last, 512 streams of 4096-vector messages for memory. RSS is the engine's peak,
sampled every 50 ms; "engine metrics" are the engine's own counts from its /metrics: requests by
status code, refusals by reason, and gRPC core's calls started / succeeded / failed (started -
succeeded - failed: dropped by the core). Both columns run the same code: "limits off" only raises
the limits out of reach.

First the issue-18 attacks, each against a fresh engine: 1,200 health Watch streams with a token
required, 16 concurrent 64 MB calls without a token, 100 small ones, and 512 idle streams from
127.0.0.2 (through tests/forwarder.py) while 127.0.0.1 is the token holder. ``--baseline REV``
runs the engine of an earlier revision in a third column (benchmarks/baseline.py).

Measured on the shared 2-core box (2026-12-03, ``--baseline b04c601``, the commit before issue
18; figures in benchmarks/SERVING.md): Watch flood: token holder 20/20 and probes 10/10 (before
0/20, 0/10); idle streams: 20/20 and 10/10 (before 0/20, 0/10), the 128 held closed after the
idle limit; 64 MB calls without a token: peak RSS +17 MB (before +1,637 MB, 1,235 MB held
after); at 64x (4,096 callers), ~70% of calls CANCELLED by gRPC's core before the engine saw
them, ~27% past the deadline: the engine's core count matched the clients' CANCELLED exactly
(25,040) and its 'failed' count their DEADLINE_EXCEEDED; before, it counted neither.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.baseline import baseline_env  # noqa: E402
from datasentinel.v1 import scoring_pb2 as pb  # noqa: E402
from tests.hostile import rss_mb  # noqa: E402

SCORE = "/datasentinel.v1.AnomalyScorer/Score"
STREAM = "/datasentinel.v1.AnomalyScorer/ScoreStream"
DEADLINE_S = 1.0
CORE_POLL_S = 2.5  # the engine copies gRPC core's call counts every 2 s
CONNECTIONS = 16
NO_LIMITS = {  # roughly the engine before the limits: nothing capped
    "ENGINE_MAX_CONCURRENT_RPCS": "1000000",
    "ENGINE_MAX_CALLS_PER_PEER": "1000000",
    "ENGINE_MAX_HEALTH_WATCHES": "1000000",
    "ENGINE_MAX_HEALTH_WATCHES_PER_PEER": "1000000",
    "ENGINE_MAX_INFLIGHT_ROWS": "1000000000",
    "ENGINE_STREAM_BUFFER_MB": "100000",
    "ENGINE_MAX_STREAMS_PER_CONNECTION": "100000",
}


# ---- client side (runs in its own process) ---------------------------------------------------


def request(rows: int, dim: int, seed: int = 0) -> bytes:
    x = np.random.default_rng(seed).normal(size=(rows, dim)).astype("<f4")
    raw = pb.RawVectors(data=x.tobytes(), rows=rows, cols=dim)
    return pb.ScoreRequest(ids=range(rows), raw=raw).SerializeToString()


def channels(port: int, n: int):
    import grpc

    # A local subchannel pool per channel: separate connections, as separate clients would have.
    options = [("grpc.use_local_subchannel_pool", 1)]
    return [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(n)]


async def unary_load(port: int, dim: int, callers: int, seconds: float) -> dict:
    """``callers`` concurrent callers, each sending calls back to back (closed loop)."""
    import grpc

    body = request(1, dim)
    chans = channels(port, CONNECTIONS)
    calls = [c.unary_unary(SCORE) for c in chans]
    codes: dict[str, int] = {}
    details: dict[str, str] = {}
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def caller(k: int) -> None:
        call = calls[k % len(calls)]
        while loop.time() - start < seconds:
            begin = time.perf_counter()
            try:
                await call(body, timeout=DEADLINE_S)
                code = "OK"
                latencies.append(time.perf_counter() - begin)
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                details.setdefault(code, exc.details())
            codes[code] = codes.get(code, 0) + 1

    await asyncio.gather(*(caller(k) for k in range(callers)))
    elapsed = loop.time() - start
    for c in chans:
        await c.close()
    return {"codes": codes, "latencies": latencies, "seconds": elapsed, "details": details}


async def stream_load(port: int, dim: int, streams: int, messages: int, rows: int) -> dict:
    import grpc

    body = request(rows, dim)
    chans = channels(port, CONNECTIONS)
    codes: dict[str, int] = {}
    details: dict[str, str] = {}

    async def one(i: int) -> None:
        call = chans[i % len(chans)].stream_stream(STREAM)(iter([body] * messages), timeout=60)
        try:
            async for answer in call:
                answer = pb.ScoreStreamResponse.FromString(answer)
                code = "OK" if answer.WhichOneof("outcome") == "result" else str(answer.error.code)
                codes[code] = codes.get(code, 0) + 1
        except grpc.aio.AioRpcError as exc:
            key = f"stream {exc.code().name}"
            codes[key] = codes.get(key, 0) + 1
            details.setdefault(key, exc.details())

    await asyncio.gather(*(one(i) for i in range(streams)))
    for c in chans:
        await c.close()
    return {"codes": codes, "details": details}


def client_main(args: list[str]) -> None:
    kind, port, dim, *rest = args
    if kind == "unary":
        callers, seconds = int(rest[0]), float(rest[1])
        out = asyncio.run(unary_load(int(port), int(dim), callers, seconds))
    else:
        streams, messages, rows = map(int, rest)
        out = asyncio.run(stream_load(int(port), int(dim), streams, messages, rows))
    print(json.dumps(out))


# ---- driver ---------------------------------------------------------------------------------


def start_engine(models_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    command = [
        sys.executable,
        "-m",
        "datasentinel.engine",
        "--models-dir",
        str(models_dir),
        "--workers",
        "1",
    ]
    command += ["--bind-host", "127.0.0.1", "--port", "0", "--metrics-port", "0"]
    command += ["--reload-poll-seconds", "0", "--log-level", "INFO"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    port = 0
    for line in process.stdout:
        if match := re.search(r"metrics on http://[\d.]+:(\d+)/metrics", line):
            process.metrics_port = int(match.group(1))
        if match := re.search(r"listening on [\d.]+:(\d+)", line):
            port = int(match.group(1))
        if " SERVING " in line and port:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, port
    raise SystemExit(f"engine failed to start (exit {process.wait()})")


def server_codes(process: subprocess.Popen) -> dict[str, float]:
    """The engine's own counts, from its /metrics: requests by (rpc, status code), refusals by
    (code, reason), and the calls gRPC's core started, succeeded and failed (absent before
    issue 18: a baseline engine shows only requests)."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    url = f"http://127.0.0.1:{process.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "datasentinel_requests_total":
                out[f"{labels['rpc']} {labels['code']}"] = sample.value
            elif sample.name == "datasentinel_refused_calls_total":
                out[f"refused {labels['code']} {labels['reason']}"] = sample.value
            elif sample.name == "datasentinel_grpc_calls_total":
                out[f"core {labels['outcome']}"] = sample.value
    return out


def core_dropped(counts: dict[str, int]) -> int:
    """Calls gRPC's core ended before the engine's code saw them (clients see CANCELLED)."""
    if "core started" not in counts:
        return 0
    done = counts.get("core succeeded", 0) + counts.get("core failed", 0)
    return counts["core started"] - done


def delta(after: dict, before: dict) -> dict:
    return {k: int(v - before.get(k, 0)) for k, v in after.items() if v - before.get(k, 0)}


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def clients(port: int, dim: int, specs: list[list[str]]) -> list[dict]:
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--client", spec[0], str(port), str(dim), *spec[1:]],
            stdout=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    return [json.loads(p.communicate(timeout=180)[0]) for p in processes]


def merge(results: list[dict]) -> dict:
    codes: dict[str, int] = {}
    latencies: list[float] = []
    for r in results:
        for code, n in r["codes"].items():
            codes[code] = codes.get(code, 0) + n
        latencies += r.get("latencies", [])
    seconds = max(r.get("seconds", 0) for r in results)
    return {"codes": codes, "latencies": latencies, "seconds": seconds}


def summary(result: dict, rss: float) -> dict:
    codes, total = result["codes"], sum(result["codes"].values())
    lat = sorted(result["latencies"])
    return {
        "calls": total,
        "ok_per_s": codes.get("OK", 0) / result["seconds"] if result["seconds"] else 0,
        "p99_ms": 1e3 * lat[int(0.99 * (len(lat) - 1))] if lat else float("nan"),
        "shed": codes.get("RESOURCE_EXHAUSTED", 0) / total if total else 0,
        "late": codes.get("DEADLINE_EXCEEDED", 0) / total if total else 0,
        "rss_mb": rss,
        "codes": codes,
    }


LOADS = (("1x", 64), ("4x", 256), ("16x", 1024), ("64x", 4096))  # concurrent callers


def run_config(models_dir: Path, dim: int, env: dict[str, str], seconds: float) -> dict:
    engine, port = start_engine(models_dir, env)
    try:
        clients(port, dim, [["unary", "32", "2"]])  # warm up
        out = {}
        for name, callers in LOADS:
            before = server_codes(engine)
            spec = ["unary", str(callers // 2), str(seconds)]
            with PeakRss(engine.pid) as rss:
                result = merge(clients(port, dim, [spec, spec]))
            time.sleep(CORE_POLL_S)
            out[name] = summary(result, rss.peak)
            out[name]["server"] = delta(server_codes(engine), before)
        before = server_codes(engine)
        with PeakRss(engine.pid) as rss:
            streams = merge(clients(port, dim, [["streams", "256", "4", "4096"]] * 2))
        time.sleep(CORE_POLL_S)
        out["streams"] = {"codes": streams["codes"], "rss_mb": rss.peak}
        out["streams"]["server"] = delta(server_codes(engine), before)
        out["rss_after_mb"] = rss_mb(engine.pid)
        return out
    finally:
        engine.terminate()
        engine.wait(30)


# ---- attacks (issue 18): a stranger against a token holder --------------------------------


def settle(flood, seconds: float = 15.0) -> None:
    """Waits until the flood's refused calls stop ending (1 s without change, at most
    ``seconds``): what is still open then is held by the engine."""
    deadline, last, quiet_since = time.monotonic() + seconds, -1, time.monotonic()
    while time.monotonic() < deadline:
        ended = flood.ended()
        if ended != last:
            last, quiet_since = ended, time.monotonic()
        elif time.monotonic() - quiet_since > 1.0:
            return
        time.sleep(0.1)


def run_attacks(models_dir: Path, dim: int, env: dict[str, str], tmp: Path) -> dict:
    """Each attack against a fresh engine: a health Watch flood and huge messages without a
    token (token required), then 512 idle streams from another address (no token set)."""
    from tests.forwarder import forwarder
    from tests.hostile import (
        STREAM,
        TOKEN,
        WATCH,
        Flood,
        huge_calls,
        probes_answered,
        score_request,
        token_holder_served,
    )

    def served(address: str) -> int:
        return token_holder_served(address, request=score_request(dim))

    tokens = tmp / "tokens"
    tokens.write_text(TOKEN + "\n")
    out: dict = {}
    engine, port = start_engine(models_dir, {**env, "ENGINE_AUTH_TOKEN_FILE": str(tokens)})
    address = f"127.0.0.1:{port}"
    try:
        before = server_codes(engine)
        with Flood(address, WATCH, calls=1200, channels=12) as flood:
            settle(flood)
            out["watch"] = {
                "flood": dict(flood.codes),
                "served": served(address),
                "probes": probes_answered(address),
            }
        before = server_codes(engine)
        codes, rss_before, peak, after = huge_calls(address, engine.pid, calls=16, mb=64)
        out["huge"] = {
            "codes": {c: codes.count(c) for c in set(codes)},
            "rss": (rss_before, peak, after),
        }
        import grpc

        from tests.hostile import SCORE

        with grpc.insecure_channel(address) as channel:
            for _ in range(100):
                try:
                    channel.unary_unary(SCORE)(score_request(dim), timeout=5)
                except grpc.RpcError:
                    pass
        out["unauthenticated"] = delta(server_codes(engine), before)
    finally:
        engine.terminate()
        engine.wait(30)
    idle_env = {**env, "ENGINE_STREAM_IDLE_SECONDS": "5"}
    engine, port = start_engine(models_dir, idle_env)
    address = f"127.0.0.1:{port}"
    try:
        with (
            forwarder(("127.0.0.1", port), "127.0.0.2") as attacker,
            Flood(attacker, STREAM, calls=512, channels=8) as flood,
        ):
            settle(flood, seconds=4)
            out["idle"] = {
                "flood": dict(flood.codes),
                "served": served(address),
                "probes": probes_answered(address),
            }
            time.sleep(6)  # past the idle limit
            out["idle"]["flood_later"] = dict(flood.codes)
    finally:
        engine.terminate()
        engine.wait(30)
    return out


def attack_table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = [f"| attack | {' | '.join(names)} |", "|---|" + "---|" * len(names)]

    def row(label, value):
        lines.append(f"| {label} | " + " | ".join(value(results[n]) for n in names) + " |")

    row(
        "1,200 Watch streams, no token: token holder's Score OK",
        lambda r: f"{r['watch']['served']}/20",
    )
    row("  health checks answered", lambda r: f"{r['watch']['probes']}/10")
    row("  the flood's refused calls", lambda r: json.dumps(r["watch"]["flood"]))
    row(
        "512 idle streams from 127.0.0.2: Score OK from 127.0.0.1",
        lambda r: f"{r['idle']['served']}/20",
    )
    row("  health checks answered", lambda r: f"{r['idle']['probes']}/10")
    row("  streams ended at once", lambda r: json.dumps(r["idle"]["flood"]))
    row(
        "  streams ended 6 s later (idle limit 5 s)", lambda r: json.dumps(r["idle"]["flood_later"])
    )
    row("16 x 64 MB Score, no token: codes", lambda r: json.dumps(r["huge"]["codes"]))
    row(
        "  engine RSS before / peak / after, MB",
        lambda r: " / ".join(f"{v:.0f}" for v in r["huge"]["rss"]),
    )
    row(
        "16 huge + 100 small calls without a token: engine counted",
        lambda r: json.dumps(r["unauthenticated"]),
    )
    return "\n".join(lines)


def table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = [f"| | {' | '.join(names)} |", "|---|" + "---|" * len(names)]

    def row(label, value):
        lines.append(f"| {label} | " + " | ".join(value(results[n]) for n in names) + " |")

    for load, callers in LOADS:
        label = f"{load} ({callers} callers)"
        row(f"{label}: calls answered OK/s", lambda r, k=load: f"{r[k]['ok_per_s']:.0f}")
        row(f"{label}: p99 of OK, ms", lambda r, k=load: f"{r[k]['p99_ms']:.0f}")
        row(f"{label}: shed (RESOURCE_EXHAUSTED)", lambda r, k=load: f"{r[k]['shed']:.1%}")
        row(f"{label}: past the 1 s deadline", lambda r, k=load: f"{r[k]['late']:.1%}")
        row(f"{label}: engine peak RSS, MB", lambda r, k=load: f"{r[k]['rss_mb']:.0f}")
        row(f"{label}: client codes", lambda r, k=load: json.dumps(r[k]["codes"]))
        row(f"{label}: engine metrics", lambda r, k=load: json.dumps(r[k]["server"]))
        row(
            f"{label}: dropped by gRPC's core (engine's count)",
            lambda r, k=load: str(core_dropped(r[k]["server"])),
        )
    row("512 streams x 4 x 4096 vectors: outcomes", lambda r: json.dumps(r["streams"]["codes"]))
    row("512 streams: engine peak RSS, MB", lambda r: f"{r['streams']['rss_mb']:.0f}")
    row("engine RSS afterwards, MB", lambda r: f"{r['rss_after_mb']:.0f}")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, help="default: a tiny model built for the run")
    parser.add_argument("--dim", type=int, default=16, help="features of the built tiny model")
    parser.add_argument("--seconds", type=float, default=5.0, help="per load level")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run the engine of this git revision (e.g. the commit before a change), "
        "in a third column",
    )
    parser.add_argument("--attacks-only", action="store_true", help="skip the load levels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models_dir, dim = args.models_dir, args.dim
        if models_dir is None:
            from tests.conftest import build_tiny_model

            models_dir = build_tiny_model(Path(tmp) / "models", dim=dim).dir
        else:
            from datasentinel.model_config import load_config

            dim = load_config(models_dir).input_dim
        configs = {"limits on (defaults)": {}, "limits off": NO_LIMITS}
        if args.baseline:
            configs[f"before ({args.baseline})"] = baseline_env(args.baseline, Path(tmp))
        attacks = {
            name: run_attacks(models_dir, dim, env, Path(tmp))
            for name, env in configs.items()
            if name != "limits off"
        }
        print(attack_table(attacks), flush=True)
        if not args.attacks_only:
            results = {
                name: run_config(models_dir, dim, env, args.seconds)
                for name, env in configs.items()
            }
            print()
            print(table(results))


if __name__ == "__main__":
    main()
