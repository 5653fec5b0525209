"""Latency against offered load for benchmarks/serving.py (``--load-curve``): unary Score calls
sent at a fixed rate whatever the answers do (open loop: h2load's ``--rps``), from low load to
past saturation, at 1 and 1024 vectors per call, on the engine and on the no-model echo floor,
the two servers taking turns point by point; p50 and p99 per point, as a table and a picture.

h2load sends each connection's calls on a timer; a call waits for a free stream only when
``IN_FLIGHT`` are already out, which happens past saturation. Such waiting is not in the
latencies (h2load times a call from when it is sent), so past saturation the achieved rate, not
the latency, shows the overload: the table gives both.
"""

from __future__ import annotations

import re
import statistics
import subprocess
from pathlib import Path

CONNECTIONS = 4
# Calls in flight at most, all connections together: the engine's default per-address share
# (ENGINE_MAX_CALLS_PER_PEER, 128). More would be refused as RESOURCE_EXHAUSTED, which h2load
# counts as answered (gRPC errors travel as HTTP 200): fast refusals would pass for latency.
IN_FLIGHT = 128
# Offered calls/s per vectors-per-call: from well under the engine's throughput to past the
# echo floor's (2026-12-03, 1 worker: engine ~1.3-1.7k calls/s at 1 vector and ~0.8k at 1024;
# echo ~4.7k and ~2.3k).
RATES = {
    1: (200, 500, 1000, 1500, 2000, 3000, 4000, 6000),
    1024: (50, 100, 200, 400, 600, 800, 1200, 1600, 2400),
}


def point(port: int, body: Path, rate: float, seconds: float, log: Path) -> dict:
    """One open-loop measurement: ``rate`` calls/s for ``seconds`` of the request in ``body``
    (a framed ScoreRequest). Achieved calls/s, p50/p99 in ms, and calls not answered in time
    (h2load's failed + errored + timeout)."""
    command = ["h2load", "-c", str(CONNECTIONS), "-m", str(IN_FLIGHT // CONNECTIONS)]
    command += ["--rps", f"{rate / CONNECTIONS:g}", "-D", f"{seconds:g}"]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    command += ["-d", str(body), "--log-file", str(log)]
    command += [f"http://127.0.0.1:{port}/datasentinel.v1.AnomalyScorer/Score"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120).stdout
    return figures(out, log.read_text(), seconds)


def figures(out: str, log: str, seconds: float) -> dict:
    """From h2load's summary and its per-call log (the third column: microseconds)."""
    counts = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    if counts is None:
        raise RuntimeError(f"h2load gave no counts:\n{out}")
    succeeded, *lost = map(int, counts.groups())
    latencies = sorted(int(line.split()[2]) / 1e3 for line in log.splitlines() if line.strip())
    if not latencies:
        raise RuntimeError(f"h2load answered no call:\n{out}")
    return {
        "calls_per_s": succeeded / seconds,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "lost": sum(lost),
    }


def curve(servers: dict, bodies: dict, seconds: float, workdir: Path, repeats: int) -> dict:
    """Every rate on every server in turn (low to high, ``repeats`` rounds); medians per point.
    ``servers``: name -> port; ``bodies``: vectors per call -> framed request file.
    Returns (name, vectors, offered) -> figures."""
    runs: dict = {}
    for _ in range(repeats):
        for rows, rates in RATES.items():
            for rate in rates:
                for name, port in servers.items():
                    log = workdir / f"curve-{name}-{rows}-{rate}.log"
                    result = point(port, bodies[rows], rate, seconds, log)
                    runs.setdefault((name, rows, rate), []).append(result)
    return {
        key: {k: statistics.median(r[k] for r in results) for k in results[0]}
        for key, results in runs.items()
    }


def report(points: dict) -> None:
    print(
        "\nlatency vs offered load (open loop, h2load --rps, unary Score, "
        f"{CONNECTIONS} connections, at most {IN_FLIGHT} calls in flight); medians of rounds"
    )
    header = ("offered/s", "achieved/s", "p50 ms", "p99 ms", "lost")
    print(f"{'server':12}{'vectors':>8}" + "".join(f"{h:>12}" for h in header))
    for (name, rows, rate), r in points.items():
        cells = (
            f"{rate:,}",
            f"{r['calls_per_s']:,.0f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['lost']:.0f}",
        )
        print(f"{name:12}{rows:>8}" + "".join(f"{c:>12}" for c in cells))


def plot(points: dict, path: Path, title: str) -> None:
    """p50 (solid) and p99 (dashed) against offered calls/s, one panel per vectors per call,
    every server on the same axes; a hollow marker where fewer than 95% of the offered calls
    were answered (saturated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    names = sorted({name for name, _, _ in points}, key=lambda n: n == "echo")  # echo last
    colors = dict(zip(names, ("tab:blue", "tab:orange", "tab:green"), strict=False))
    colors["echo"] = "tab:gray"
    fig, axes = plt.subplots(1, len(RATES), figsize=(11, 4.2), constrained_layout=True)
    for ax, (rows, rates) in zip(axes, RATES.items(), strict=True):
        for name in names:
            keys = sorted((k for k in points if k[0] == name and k[1] == rows), key=lambda k: k[2])
            offered = [k[2] for k in keys]
            for figure, style in (("p50_ms", "-"), ("p99_ms", "--")):
                ax.plot(offered, [points[k][figure] for k in keys], style, color=colors[name],
                        label=f"{name} {figure[:3]}")  # fmt: skip
                for k in keys:
                    full = points[k]["calls_per_s"] >= 0.95 * k[2]
                    ax.plot(k[2], points[k][figure], "o", color=colors[name], markersize=4,
                            markerfacecolor=colors[name] if full else "white")  # fmt: skip
        ax.set(xscale="log", yscale="log", xlabel="offered load, calls/s", ylabel="latency, ms")
        ax.set_xticks(rates)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(f"unary Score, {rows} vector{'s' if rows > 1 else ''} per call")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}; hollow: under 95% of the offered calls answered", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
