"""The metrics an operator alerts on, from a real engine with two workers: a hot reload counted
once per engine, the threshold in force, process metrics per worker, workers alive and
restarted."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

from tests.conftest import build_tiny_model
from tests.e2e.test_workers import workers_of


def scrape(engine) -> dict[str, float]:
    url = f"http://127.0.0.1:{engine.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def wait_until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_one_reload_counts_once_and_the_threshold_follows(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2", "--reload-poll-seconds", "0")
    assert wait_until(lambda: engine.log().count("SERVING model") == 2)
    assert wait_until(lambda: scrape(engine).get("datasentinel_model_threshold") == 0.5)
    build_tiny_model(tiny_model.dir, version="tiny-next", seed=3, threshold=0.75)
    engine.process.send_signal(signal.SIGHUP)
    assert wait_until(lambda: engine.log().count("model reloaded") == 2), engine.log()
    assert wait_until(lambda: scrape(engine).get("datasentinel_model_threshold") == 0.75)
    samples = scrape(engine)
    assert samples['datasentinel_model_reloads_total{outcome="success"}'] == 1
    assert samples['datasentinel_model_reloads_total{outcome="failure"}'] == 0


def test_process_metrics_per_worker_and_a_restart_counted(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2")
    samples = scrape(engine)
    for worker in ("0", "1", "supervisor"):
        assert samples[f'process_resident_memory_bytes{{worker="{worker}"}}'] > 1e6, worker
        assert f'process_open_fds{{worker="{worker}"}}' in samples
        assert f'process_cpu_seconds_total{{worker="{worker}"}}' in samples
    assert samples['datasentinel_workers{state="configured"}'] == 2
    assert samples['datasentinel_workers{state="alive"}'] == 2
    assert samples["datasentinel_worker_restarts_total"] == 0
    os.kill(workers_of(engine)[0], signal.SIGKILL)
    assert wait_until(lambda: scrape(engine)["datasentinel_worker_restarts_total"] == 1)
    assert wait_until(lambda: scrape(engine)['datasentinel_workers{state="alive"}'] == 2)
