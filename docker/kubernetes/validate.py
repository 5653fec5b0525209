"""Validates rendered Kubernetes manifests offline: ``kubectl kustomize OVERLAY | python
docker/kubernetes/validate.py`` exits 0 when every document is valid, 1 with one line per fault.

Core kinds are checked strictly (unknown fields are errors) against the Kubernetes OpenAPI
schemas shipped inside the ``kubernetes-validate`` package, pinned to ``KUBERNETES_VERSION``: no
network, no cluster. Custom resources (KServe, Prometheus Operator) are checked against the
hand-written schemas in custom-resources.schema.yaml, and the containers and volumes inside a
ServingRuntime against the Kubernetes Pod schema. A kind known to neither is an error."""

from __future__ import annotations

import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

# A recent release that current managed clusters and kind run; the package ships its schema.
KUBERNETES_VERSION = "1.35.0"
CUSTOM_SCHEMAS = Path(__file__).with_name("custom-resources.schema.yaml")


def _name(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _core(doc: dict) -> list[str]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        return [f"{_name(doc)}: {where}: {exc.message}"]
    return []


def _as_pod(doc: dict) -> dict:
    """The pod-shaped parts of a ServingRuntime, as a Pod the Kubernetes schema can check."""
    spec = doc["spec"]
    pod_spec = {key: spec[key] for key in ("containers", "volumes") if key in spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": pod_spec}


def validate(docs: list[dict]) -> list[str]:
    """One message per fault in ``docs``; empty when all are valid."""
    custom = yaml.safe_load(CUSTOM_SCHEMAS.read_text())
    faults: list[str] = []
    for doc in docs:
        kind = doc.get("kind")
        if kind in custom:
            validator = jsonschema.Draft202012Validator(custom[kind])
            faults += [
                f"{_name(doc)}: {'/'.join(map(str, e.path))}: {e.message}"
                for e in validator.iter_errors(doc)
            ]
            if kind == "ServingRuntime" and not faults:
                faults += [f"{_name(doc)} (as pod) {m}" for m in _core(_as_pod(doc))]
            continue
        try:
            faults += _core(doc)
        except kubernetes_validate.SchemaNotFoundError:
            faults.append(f"{_name(doc)}: no schema for {doc.get('apiVersion')} {kind}")
    return faults


def main() -> int:
    docs = [doc for doc in yaml.safe_load_all(sys.stdin) if doc]
    faults = validate(docs)
    for fault in faults:
        print(fault, file=sys.stderr)
    print(f"{len(docs)} documents, {len(faults)} faults (Kubernetes {KUBERNETES_VERSION})")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
