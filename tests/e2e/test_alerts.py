"""A real Prometheus scraping a real engine with the shipped configuration and alert rules:
normal traffic, an anomaly burst, then a worker killed. Every dashboard query returns data, and
the alerts that should fire do, then resolve.

The rules are the shipped ones with time scaled down for a test of about a minute and a half:
windows of minutes and hours become seconds (5m -> 5s, 1h -> 60s, ...) and ``for`` durations a
second (1m -> 20 s, so a worker restarted in a few seconds is no "worker down"); the same
substitution turns the dashboard's windows into ones this short run has data for."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import build_tiny_model
from tests.e2e.test_workers import workers_of

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "docker" / "prometheus"
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "datasentinel-engine.json"
TOKEN = "alerts-test-token"
WINDOWS = {"5m": "5s", "30m": "5s", "1h": "60s", "6h": "60s", "10m": "15s", "15m": "15s"}
FOR = {"1m": "20s"}  # anything else: 1s
DIM = 6

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus is not installed (Debian: apt-get install prometheus; .ci/run does)",
)


def scaled(text: str) -> str:
    text = re.sub(r"\[(\w+)\]", lambda m: f"[{WINDOWS.get(m.group(1), m.group(1))}]", text)
    return re.sub(r"for: (\w+)", lambda m: f"for: {FOR.get(m.group(1), '1s')}", text)


def listening_port(pid: int, timeout: float = 30) -> int:
    """The TCP port process ``pid`` listens on, from /proc (Prometheus was told port 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        for row in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                return int(fields[1].split(":")[1], 16)
        time.sleep(0.1)
    raise AssertionError("prometheus never listened")


@pytest.fixture
def prometheus(tmp_path):
    """Starts Prometheus on the shipped configuration for ``target``; yields its base URL."""
    processes = []

    def start(target: str, token_file: Path) -> str:
        config = yaml.safe_load((SHIPPED / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
        job = config["scrape_configs"][0]
        config["scrape_configs"] = [job]  # the engine's job only: no bridge runs here
        job["static_configs"] = [{"targets": [target]}]
        job["authorization"]["credentials_file"] = str(token_file)
        (tmp_path / "alerts.yaml").write_text(scaled((SHIPPED / "alerts.yaml").read_text()))
        config["rule_files"] = [str(tmp_path / "alerts.yaml")]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        process = subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'data'}", "--web.listen-address=127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"),
        )  # fmt: skip
        processes.append(process)
        base = f"http://127.0.0.1:{listening_port(process.pid)}"
        wait_for(lambda: ready(base), 60, "Prometheus to be ready")  # 503 until then
        return base

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def api(base: str, path: str, **query) -> dict:
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())["data"]


def firing(base: str) -> set[str]:
    return {
        a["labels"]["alertname"] for a in api(base, "alerts")["alerts"] if a["state"] == "firing"
    }


def ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:
            return response.status == 200
    except OSError:  # urllib's HTTPError (503 while starting) and refused connections
        return False


def scraped(base: str) -> bool:
    targets = api(base, "targets")["activeTargets"]
    return bool(targets) and targets[0]["health"] == "up"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class Traffic:
    """Scores 16-row batches about 20 times a second from the current pool of rows."""

    def __init__(self, engine, pools: dict[str, np.ndarray]) -> None:
        self.pools, self.pool = pools, "normal"
        self._engine, self._stop = engine, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = np.random.default_rng(0)
        with grpc.insecure_channel(self._engine.address) as channel:
            stub = pb_grpc.AnomalyScorerStub(channel)
            while not self._stop.is_set():
                rows = self.pools[self.pool][rng.integers(0, 200, 16)]
                request = pb.ScoreRequest(
                    ids=range(16), raw=pb.RawVectors(data=rows.tobytes(), rows=16, cols=DIM)
                )
                stub.Score(request, timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),))
                time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


def pools(model) -> dict[str, np.ndarray]:
    """Rows the model scores well under its threshold, and far over it."""
    rng = np.random.default_rng(1)
    out = {}
    for name, scale, keep in (("normal", 0.3, lambda s: s < 0.3 * model.threshold),
                              ("anomalous", 6.0, lambda s: s > 5 * model.threshold)):  # fmt: skip
        x = (model.mean + rng.normal(scale=scale, size=(5000, DIM)) * model.std).astype("<f4")
        chosen = x[keep(model.expected(x)[0])]
        assert len(chosen) >= 200, name
        out[name] = chosen[:200]
    return out


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        scaled(target["expr"].replace("$__rate_interval", "10s"))
        for panel in panels
        for target in panel["targets"]
    ]


def test_alerts_fire_and_resolve_and_the_dashboard_has_data(tmp_path, start_engine, prometheus):
    model = build_tiny_model(tmp_path / "models", dim=DIM, threshold=0.5)
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN}\n")
    engine = start_engine(
        model.dir, "--workers", "2", "--auth-token-file", str(tokens), "--metrics-require-token"
    )
    base = prometheus(f"127.0.0.1:{engine.metrics_port}", tokens)
    with grpc.insecure_channel(engine.address) as channel:  # refused: the refusals panel
        with pytest.raises(grpc.RpcError):
            pb_grpc.AnomalyScorerStub(channel).GetModelInfo(pb.GetModelInfoRequest(), timeout=5)
    with Traffic(engine, pools(model)) as traffic:
        wait_for(lambda: scraped(base), 30, "the first scrape")
        time.sleep(25)  # a baseline of normal traffic
        assert not firing(base) & {"DataSentinelAnomalyRateJumped", "DataSentinelReplicaDown"}

        traffic.pool = "anomalous"
        burst = {"DataSentinelAnomalyRateJumped", "DataSentinelScoreDistributionDrifted"}
        wait_for(lambda: burst <= firing(base), 20, f"{burst} firing")
        traffic.pool = "normal"
        wait_for(lambda: not burst & firing(base), 30, f"{burst} resolved")

        empty = [q for q in dashboard_queries() if not api(base, "query", query=q)["result"]]
        assert not empty, f"dashboard queries without data: {empty}"

        os.kill(workers_of(engine)[0], signal.SIGKILL)
        wait_for(lambda: "DataSentinelWorkerRestarted" in firing(base), 20, "restart alert")
        wait_for(lambda: "DataSentinelWorkerRestarted" not in firing(base), 30, "it resolved")
    never = {"DataSentinelWorkerDown", "DataSentinelReplicaDown", "DataSentinelReloadFailed",
             "DataSentinelShedding", "DataSentinelGrpcCoreDroppingCalls"}  # fmt: skip
    assert not never & firing(base)
