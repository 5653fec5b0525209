"""The Kubernetes manifests (docker/kubernetes): every overlay renders with `kubectl kustomize`
and validates offline against the pinned Kubernetes schemas, and the things that break a
deployment silently hold: probe and Service ports equal the engine's own port settings, the
models volume is read-only in the engine, the pods run locked down, the grace period covers the
drain. No cluster is needed (none can run here)."""

from __future__ import annotations

import copy
import functools
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "docker" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBE / "overlays").iterdir() if p.is_dir())
# Overlays that run the engine as our own Deployment (kserve runs it as a ServingRuntime).
DEPLOYMENT_OVERLAYS = [o for o in OVERLAYS if o != "kserve"]

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl (with its built-in kustomize) is not installed: manifests not rendered",
)


def _load_validator():
    spec = importlib.util.spec_from_file_location("k8s_validate", KUBE / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validator = _load_validator()


@functools.cache
def _render(overlay: str) -> tuple[dict, ...]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBE / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render(overlay: str) -> list[dict]:
    """A fresh copy, so a test may edit it."""
    return copy.deepcopy(list(_render(overlay)))


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def engine_config(docs: list[dict]) -> dict[str, str]:
    configs = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("engine-")
    ]
    assert len(configs) == 1
    return configs[0]["data"]


def engine_container(docs: list[dict]) -> dict:
    pod = one(docs, "Deployment", "engine")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "engine")


def port_named(container: dict, name: str) -> int:
    return next(p["containerPort"] for p in container["ports"] if p["name"] == name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(overlay):
    docs = render(overlay)
    assert docs
    assert validator.validate(docs) == []


def test_validator_rejects_unknown_fields_wrong_types_and_bad_custom_resources():
    docs = render("default")
    deployment = one(docs, "Deployment", "engine")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # typo
    service = one(docs, "Service", "engine-headless")
    service["spec"]["ports"][0]["port"] = "nine thousand"
    faults = validator.validate([deployment, service])
    assert len(faults) == 2 and "readinesProbe" in faults[0] and "nine thousand" in faults[1]

    kserve = render("kserve")
    runtime = one(kserve, "ServingRuntime")
    runtime["spec"]["protocolVersions"] = ["v3"]
    assert validator.validate([runtime])
    runtime = one(render("kserve"), "ServingRuntime")
    runtime["spec"]["containers"][0]["imagePullPolicie"] = "Never"  # checked as a core Pod
    assert any("imagePullPolicie" in f for f in validator.validate([runtime]))
    assert validator.validate([{"apiVersion": "example.com/v1", "kind": "Unknown"}])


@pytest.mark.parametrize("overlay", DEPLOYMENT_OVERLAYS)
def test_probe_and_service_ports_are_the_engines_ports(overlay):
    docs = render(overlay)
    config = engine_config(docs)
    container = engine_container(docs)
    grpc_port = int(config["ENGINE_PORT"])
    metrics_port = int(config["ENGINE_METRICS_PORT"])
    assert port_named(container, "grpc") == grpc_port
    assert port_named(container, "metrics") == metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        handler = container[probe]
        port = (handler.get("grpc") or handler.get("tcpSocket") or {}).get("port", grpc_port)
        assert port == grpc_port, f"{probe} probes port {port}, the engine serves {grpc_port}"
    # Readiness must follow the scoring service, which goes NOT_SERVING while draining.
    if "grpc" in container["readinessProbe"]:
        assert container["readinessProbe"]["grpc"]["service"] == "datasentinel.v1.AnomalyScorer"
    annotations = one(docs, "Deployment", "engine")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == metrics_port
    for name in ("engine", "engine-headless"):
        ports = {p["name"]: p for p in one(docs, "Service", name)["spec"]["ports"]}
        assert ports["grpc"]["port"] == grpc_port and ports["grpc"]["targetPort"] == "grpc"
    assert one(docs, "Service", "engine")["spec"]["ports"][1]["targetPort"] == "metrics"


@pytest.mark.parametrize("overlay", DEPLOYMENT_OVERLAYS)
def test_headless_service_and_producer_target_balance_over_every_replica(overlay):
    docs = render(overlay)
    headless = one(docs, "Service", "engine-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert (
        headless["spec"]["selector"]
        == one(docs, "Deployment", "engine")["spec"]["selector"]["matchLabels"]
    )
    producer = one(docs, "Job", "datasentinel-producer")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in producer["containers"][0]["env"]}
    assert env["ENGINE_TARGET"] == f"dns:///engine-headless:{engine_config(docs)['ENGINE_PORT']}"
    config = engine_config(docs)
    assert float(config["ENGINE_MAX_CONNECTION_AGE_SECONDS"]) > 0  # else clients never rebalance
    limit = engine_container(docs)["resources"]["limits"]["cpu"]
    assert int(config["ENGINE_WORKERS"]) == int(limit)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_models_volume_is_read_only_in_the_engine_and_writable_for_the_trainer(overlay):
    docs = render(overlay)
    claim = one(docs, "PersistentVolumeClaim", "datasentinel-models")["metadata"]["name"]
    trainer = one(docs, "Job", "datasentinel-trainer")["spec"]["template"]["spec"]
    trainer_volume = next(v for v in trainer["volumes"] if "persistentVolumeClaim" in v)
    assert trainer_volume["persistentVolumeClaim"]["claimName"] == claim
    trainer_mount = next(
        m for m in trainer["containers"][0]["volumeMounts"] if m["name"] == trainer_volume["name"]
    )
    assert not trainer_mount.get("readOnly")
    if overlay == "kserve":
        isvc = one(docs, "InferenceService")
        assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"pvc://{claim}/"
        return
    pod = one(docs, "Deployment", "engine")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    mount = next(m for m in engine_container(docs)["volumeMounts"] if m["name"] == volume["name"])
    assert mount["readOnly"] is True
    assert mount["mountPath"] == engine_config(docs)["MODELS_DIR"]


def _pods(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        elif doc["kind"] == "ServingRuntime":
            yield doc["metadata"]["name"], doc["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_locked_down(overlay):
    pods = list(_pods(render(overlay)))
    assert pods
    for name, pod in pods:
        pod_context = pod.get("securityContext", {})
        for container in pod["containers"]:
            ctx = {**pod_context, **container["securityContext"]}
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001, name
            assert ctx["readOnlyRootFilesystem"] is True, name
            assert ctx["allowPrivilegeEscalation"] is False, name
            assert ctx["capabilities"]["drop"] == ["ALL"], name
            # A read-only root needs somewhere to write: /tmp (HOME=/tmp in the images).
            assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"]), name
            assert {"requests", "limits"} <= container["resources"].keys(), name


@pytest.mark.parametrize("overlay", DEPLOYMENT_OVERLAYS)
def test_grace_period_covers_pre_stop_and_the_engines_drain(overlay):
    docs = render(overlay)
    pod = one(docs, "Deployment", "engine")["spec"]["template"]["spec"]
    command = engine_container(docs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain = float(engine_config(docs)["ENGINE_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] >= float(command[1]) + drain
    pdb = one(docs, "PodDisruptionBudget", "engine")
    assert pdb["spec"]["selector"] == one(docs, "Deployment", "engine")["spec"]["selector"]


def test_tls_overlay_serves_tls_and_probes_with_the_tls_healthcheck():
    docs = render("tls")
    container = engine_container(docs)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ENGINE_REQUIRE_AUTH"] == "true"
    mounts = {m["mountPath"].rstrip("/") for m in container["volumeMounts"]}
    for key in ("ENGINE_TLS_CERT_FILE", "ENGINE_TLS_KEY_FILE", "ENGINE_HEALTHCHECK_CA_FILE"):
        assert str(Path(env[key]).parent) in mounts
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"][-1] == "datasentinel.engine.healthcheck"


def test_token_file_is_in_the_mounted_secret():
    docs = render("default")
    token = Path(engine_config(docs)["ENGINE_AUTH_TOKEN_FILE"])
    pod = one(docs, "Deployment", "engine")["spec"]["template"]["spec"]
    mount = next(
        m for m in engine_container(docs)["volumeMounts"] if m["mountPath"] == str(token.parent)
    )
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "datasentinel-token"


def test_kserve_runtime_speaks_grpc_v2_on_the_engines_port():
    docs = render("kserve")
    runtime = one(docs, "ServingRuntime")
    isvc = one(docs, "InferenceService")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert "grpc-v2" in runtime["spec"]["protocolVersions"]
    container = runtime["spec"]["containers"][0]
    grpc_port = int(engine_config(docs)["ENGINE_PORT"])
    assert port_named(container, "h2c") == grpc_port  # KServe routes gRPC to the port named h2c
    assert container["readinessProbe"]["grpc"]["port"] == grpc_port
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODELS_DIR"] == "/mnt/models"  # where KServe mounts storageUri
    ref = container["envFrom"][0]["configMapRef"]["name"]
    assert ref in {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] in formats


def test_kafka_bridge_scales_on_its_own_groups_lag_up_to_the_partition_ceiling():
    docs = render("kafka")
    scaled = one(docs, "ScaledObject", "datasentinel-bridge")["spec"]
    bridge = one(docs, "Deployment", "datasentinel-bridge")
    container = bridge["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    trigger = scaled["triggers"][0]["metadata"]
    assert scaled["scaleTargetRef"]["name"] == bridge["metadata"]["name"]
    assert trigger["consumerGroup"] == env["BRIDGE_KAFKA_GROUP"]
    assert trigger["topic"] == env["BRIDGE_KAFKA_TOPIC"]
    assert trigger["bootstrapServers"] == env["BRIDGE_KAFKA_BOOTSTRAP"]
    assert trigger["allowIdleConsumers"] == "false"  # never more replicas than partitions
    # The drain (BRIDGE_DRAIN_TIMEOUT) fits in the grace period.
    grace = bridge["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert float(env["BRIDGE_DRAIN_TIMEOUT"]) < grace
