"""Balancing and failover over several engines, with real processes on loopback addresses:
three engines (127.0.0.2-4) and one ``datasentinel-produce`` with ``--engine-target
ipv4:...`` (round_robin) and several streams. One run checks, in order:

1. every engine served a fair share (its own /metrics, datasentinel_rows_scored_total),
2. SIGKILL of one engine mid-stream loses and duplicates nothing (exit 0, the --output CSV has
   ids 0..N-1 once each, every one with a score),
3. a fourth engine (127.0.0.5) started mid-run receives rows soon after it is SERVING: it is in
   the target from the start (a static ipv4 list learns no new addresses), refused until it
   listens, and picked when a stream is re-created (the engines' short max connection age
   closes connections every ~2 s, so every stream re-picks).

Every engine listens on the same port, read back from the first (port 0): the addresses differ,
so they do not collide, and the fourth's address can be in the target before it starts.
The figures (spread, lost/duplicated, pickup time) are logged: pytest --log-cli-level=INFO.
"""

from __future__ import annotations

import csv
import logging
import re
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from datasentinel import synthetic
from tests.conftest import REPO, build_tiny_model, wait_serving

log = logging.getLogger(__name__)
# Linux routes all of 127.0.0.0/8 to loopback; elsewhere 127.0.0.2-5 need aliases first.
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs 127.0.0.2-5 on loopback")

COUNT = 180_000
RATE = 12_000  # vectors/s: a ~15 s stream, so the kill and the scale-up land mid-stream
STREAMS = 4  # one per address in the target
DIM = synthetic.SyntheticSpec().n_features
AGE_S = 2.0  # the engines' max connection age: streams re-pick a replica this often
GRACE_S = 0.5
ENGINE_ENV = {
    "ENGINE_MAX_CONNECTION_AGE_SECONDS": str(AGE_S),
    "ENGINE_MAX_CONNECTION_AGE_GRACE_SECONDS": str(GRACE_S),
}
# Fair share is 1/3 each. Each stream sits on one engine for a connection age, and 4 streams
# over 3 engines put two on one of them at any moment (50/25/25), with the first picks made
# while some connections may still be coming up; 10% (less than a third of a fair share) allows
# for that and still fails when one engine is skipped or starved (pick_first gives 100/0/0). A
# CI run on a loaded machine measured 50/14.4/35.5 against an earlier bound of 15%.
MIN_SHARE = 0.10
# The producer retries a refused address at most every 2 s (max_reconnect_backoff_ms), then
# a stream re-picks within a connection age plus its grace; 2 s more for a loaded machine.
MAX_PICKUP_S = 2.0 + AGE_S + GRACE_S + 2.0


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("multi") / "models", dim=DIM).dir


def rows_scored(engine) -> float:
    """datasentinel_rows_scored_total from the engine's own /metrics."""
    host = re.search(r"metrics on http://([\d.]+):", engine.log()).group(1)
    url = f"http://{host}:{engine.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    values = re.findall(r"^datasentinel_rows_scored_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    assert values, f"no datasentinel_rows_scored_total at {url}"
    return sum(float(v) for v in values)


def serving_a_stream(engines: list, deadline: float, window_s: float = 0.03):
    """An engine that scored rows in each of the last two ``window_s`` windows: it holds a
    stream now. Streams leave a replica together when its connection ages (after a grace in
    which they still score) and come back only as other replicas' connections age, so at a
    random moment a given replica may hold none, and a kill then breaks nothing (2 of 6 runs
    that killed a fixed replica; 1 of 10 that killed the one busiest in one window)."""
    last = [rows_scored(e) for e in engines]
    grew = [False] * len(engines)
    while time.monotonic() < deadline:
        time.sleep(window_s)
        now = [rows_scored(e) for e in engines]
        growing = [b > a for a, b in zip(last, now, strict=True)]
        for engine, before, again in zip(engines, grew, growing, strict=True):
            if before and again:
                return engine
        last, grew = now, growing
    raise AssertionError("no engine scored rows in two windows in a row for 10 s")


def test_fair_share_kill_and_scale_up_lose_nothing(models, start_engine, tmp_path):
    started = time.monotonic()

    def engine(host: str, port: int, wait: bool = True):
        args = ("--workers", "1", "--bind-host", host, "--port", str(port))
        return start_engine(models, *args, env=ENGINE_ENV, wait=wait)

    first = engine("127.0.0.2", 0)
    port = first.port
    with ThreadPoolExecutor(2) as pool:
        others = list(pool.map(lambda h: engine(h, port), ["127.0.0.3", "127.0.0.4"]))
    engines = [first, *others]
    assert [e.address for e in engines] == [f"127.0.0.{i}:{port}" for i in (2, 3, 4)]

    target = "ipv4:" + ",".join(f"127.0.0.{i}:{port}" for i in (2, 3, 4, 5))
    output = tmp_path / "results.csv"
    argv = [sys.executable, "-m", "datasentinel.producer", "--engine-target", target]
    argv += ["--streams", str(STREAMS), "--count", str(COUNT), "--rate", str(RATE)]
    argv += ["--batch-size", "64", "--show", "none", "--output", str(output)]
    argv += ["--max-retry-seconds", "30", "--ready-timeout", "30"]
    producer = subprocess.Popen(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        # (1) the spread over the three, after every stream re-picked at least once
        deadline = time.monotonic() + 30
        while sum(rows_scored(e) for e in engines) < RATE * (AGE_S + 2):
            assert producer.poll() is None, producer.communicate()[0]
            assert time.monotonic() < deadline, "the producer sends nothing"
            time.sleep(0.1)
        spread = [rows_scored(e) for e in engines]

        # (2) one engine killed mid-stream; (3) a fourth one started at the 4th address
        victim = serving_a_stream(engines, deadline=time.monotonic() + 10)
        victim.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        fourth = engine("127.0.0.5", port, wait=False)
        wait_serving(fourth)
        serving_at = time.monotonic()
        pickup = None
        while producer.poll() is None and time.monotonic() < serving_at + 20:
            if rows_scored(fourth) > 0:
                pickup = time.monotonic() - serving_at
                break
            time.sleep(0.05)
        stdout, _ = producer.communicate(timeout=60)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait()

    total = sum(spread)
    shares = [round(100 * n / total, 1) for n in spread]
    log.info("spread before the kill over 127.0.0.2-4: %s rows = %s %%", spread, shares)
    assert all(n >= MIN_SHARE * total for n in spread), (spread, stdout)

    assert producer.returncode == 0, stdout
    with open(output, newline="") as handle:
        rows = list(csv.DictReader(handle))
    ids = [int(row["id"]) for row in rows]
    lost = COUNT - len(set(ids))
    duplicated = len(ids) - len(set(ids))
    log.info("after the kill: %d lost, %d duplicated of %d", lost, duplicated, COUNT)
    assert ids == list(range(COUNT)), stdout
    assert all(row["score"] != "" for row in rows)
    assert f"answered     {COUNT} (100.00%)" in stdout and "failed       0" in stdout
    assert "duplicates" not in stdout
    # The kill broke streams (the connection age breaks them too, with "max connection age").
    breaks = re.findall(r"stream \d+ ended \((.*)\); \d+ request", stdout)
    kill_breaks = [b for b in breaks if "max connection age" not in b]
    log.info(
        "streams broken: %d by the connection age, %d by the kill: %s",
        len(breaks) - len(kill_breaks),
        len(kill_breaks),
        sorted(set(kill_breaks)),
    )
    assert kill_breaks, stdout

    survivors = [e for e in engines if e is not victim]
    final = [rows_scored(e) for e in (*survivors, fourth)]
    log.info(
        "new engine: SERVING %.2f s after the kill, first rows %s s later; rows at the end "
        "(%s): %s; test ran %.1f s",
        serving_at - killed_at,
        None if pickup is None else round(pickup, 2),
        ", ".join(e.host for e in (*survivors, fourth)),
        final,
        time.monotonic() - started,
    )
    assert pickup is not None, f"the fourth engine got no rows\n{stdout}"
    assert pickup <= MAX_PICKUP_S, pickup
