"""A bounded soak: a multi-worker engine, started as a real process on loopback, under a steady
producer-like load (several streams of fixed-size batches), for a few minutes. The RSS of every
engine process (the supervisor and each worker) is sampled every few seconds; the run passes when
no process grows by more than the stated bound after the warm-up.

    python benchmarks/soak.py                        # 120 s, 2 workers, tiny built-in model
    python benchmarks/soak.py --seconds 600 --models-dir models --workers 4

Not part of the test run (it takes minutes); the figures go to the closing note.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from datasentinel.model_config import load_config  # noqa: E402
from datasentinel.v1 import scoring_pb2 as pb  # noqa: E402
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc  # noqa: E402
from tests.conftest import build_tiny_model, spawn_engine, wait_serving  # noqa: E402

log = logging.getLogger("soak")
MB = 1024 * 1024


@dataclass
class Load:
    """What the streams sent and got back; every id must come back exactly once."""

    sent: int = 0
    answered: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def role(pid: int) -> str:
    """supervisor, worker or multiprocessing's resource tracker, from the command line."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    if b"resource_tracker" in command:
        return "tracker"
    return "worker" if b"spawn_main" in command else "supervisor"


def engine_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [supervisor, *map(int, children)]


def stream(address: str, dim: int, rows: int, first_id: int, stop: threading.Event, load: Load):
    """One producer-like stream: fixed-size batches as fast as the engine answers them."""
    x = np.random.default_rng(first_id).normal(size=(rows, dim)).astype("<f4").tobytes()
    next_id = first_id

    def requests():
        nonlocal next_id
        while not stop.is_set():
            ids = range(next_id, next_id + rows)
            next_id += rows
            with load.lock:
                load.sent += rows
            yield pb.ScoreRequest(ids=ids, raw=pb.RawVectors(data=x, rows=rows, cols=dim))

    # A connection of its own per stream (no shared subchannel), as separate producers have:
    # the kernel spreads connections, not streams, over the workers.
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(address, options=options) as channel:
        for reply in pb_grpc.AnomalyScorerStub(channel).ScoreStream(requests()):
            with load.lock:
                if reply.WhichOneof("outcome") == "result":
                    load.answered += len(reply.result.ids)
                else:
                    load.errors += len(reply.error.ids)


def sample(supervisor: int, series: dict[int, list[tuple[float, int]]], start: float) -> None:
    for pid in engine_pids(supervisor):
        rss = rss_bytes(pid)
        if rss is not None:
            series.setdefault(pid, []).append((time.monotonic() - start, rss))


def verdict(series, warmup: float, bound_mb: float, bound_pct: float) -> bool:
    """Prints each process's figures; True when every one stays within the bound."""
    ok = True
    print(
        f"\n{'process':>16} {'start MB':>9} {'base MB':>8} {'end MB':>7} {'max MB':>7} "
        f"{'growth MB':>10} {'growth %':>9} {'max growth MB':>14}"
    )
    for pid, points in series.items():
        after = [rss for t, rss in points if t >= warmup] or [points[-1][1]]
        base, end, peak = after[0], points[-1][1], max(rss for _, rss in points)
        growth = end - base
        allowed = max(bound_mb * MB, base * bound_pct / 100)
        ok &= growth <= allowed
        name = f"{role(pid)} {pid}"
        print(
            f"{name:>16} {points[0][1] / MB:9.1f} {base / MB:8.1f} {end / MB:7.1f} "
            f"{peak / MB:7.1f} {growth / MB:10.2f} {100 * growth / base:9.2f} "
            f"{(max(after) - base) / MB:14.2f}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="length of the load")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--streams", type=int, default=4, help="concurrent producer streams")
    parser.add_argument("--rows", type=int, default=64, help="vectors per message")
    parser.add_argument("--sample-seconds", type=float, default=5)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=15,
        help="growth is measured from the first sample after this",
    )
    parser.add_argument("--bound-mb", type=float, default=30)
    parser.add_argument(
        "--bound-percent",
        type=float,
        default=10,
        help="pass: each process grows less than the larger of the two bounds",
    )
    parser.add_argument("--models-dir", type=Path, help="default: a tiny model built for the run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    models_dir = (
        args.models_dir
        or build_tiny_model(Path(tempfile.mkdtemp(prefix="soak-")) / "models", dim=16).dir
    )
    dim = load_config(models_dir).input_dim
    engine = spawn_engine(models_dir, "--workers", str(args.workers), "--metrics-port", "-1")
    try:
        wait_serving(engine)
        return soak(engine, dim, args)
    finally:
        code = engine.stop()
        log.info("engine stopped with exit code %d", code)


def soak(engine, dim: int, args) -> int:
    supervisor = engine.process.pid
    log.info(
        "engine pids %s; load: %d streams x %d vectors/message for %.0f s",
        engine_pids(supervisor),
        args.streams,
        args.rows,
        args.seconds,
    )
    stop, load = threading.Event(), Load()
    threads = [
        threading.Thread(
            target=stream, args=(engine.address, dim, args.rows, i << 40, stop, load), daemon=True
        )
        for i in range(args.streams)
    ]
    series: dict[int, list[tuple[float, int]]] = {}
    start = time.monotonic()
    sample(supervisor, series, start)
    for thread in threads:
        thread.start()
    while (elapsed := time.monotonic() - start) < args.seconds:
        time.sleep(min(args.sample_seconds, args.seconds - elapsed))
        sample(supervisor, series, start)
        rss = " ".join(f"{pid}:{points[-1][1] / MB:.1f}" for pid, points in series.items())
        log.info("t=%5.0fs answered %11d  RSS MB %s", time.monotonic() - start, load.answered, rss)
    stop.set()
    for thread in threads:
        thread.join(60)
    seconds = time.monotonic() - start
    print(
        f"\nsent {load.sent} vectors, answered {load.answered}, errors {load.errors}, "
        f"{load.answered / seconds:,.0f} vectors/s over {seconds:.0f} s, "
        f"{len(series)} engine processes (supervisor first)"
    )
    print("RSS series (MB), every", args.sample_seconds, "s:")
    for pid, points in series.items():
        print(f"  {role(pid)} {pid}: " + " ".join(f"{rss / MB:.1f}" for _, rss in points))
    ok = verdict(series, args.warmup_seconds, args.bound_mb, args.bound_percent)
    lost = load.sent - load.answered - load.errors
    print(
        f"\nbound: growth after the {args.warmup_seconds:.0f} s warm-up < max("
        f"{args.bound_mb:.0f} MB, {args.bound_percent:.0f}%) per process; lost vectors: {lost}"
    )
    print("PASS" if ok and lost == 0 and load.errors == 0 else "FAIL")
    return 0 if ok and lost == 0 and load.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
