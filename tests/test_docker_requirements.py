"""Docker images install their service's extra from pyproject via docker/requirements.py."""

import subprocess
import sys

from tests.conftest import REPO


def requirements(*args):
    result = subprocess.run(
        [sys.executable, "docker/requirements.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def names(lines):
    return {line.split(">")[0].split("=")[0].split("<")[0] for line in lines}


def test_engine_and_producer_images_get_no_torch():
    for extra in ("engine", "producer"):
        assert "torch" not in names(requirements(extra)), extra


def test_nested_extras_are_expanded_and_base_dependencies_included():
    engine = names(requirements("engine"))
    assert {"grpcio", "grpcio-health-checking", "protobuf", "onnxruntime", "numpy"} <= engine
    assert not any(name.startswith("datasentinel") for name in engine)


def test_trainer_gets_torch_and_gpu_image_can_drop_onnxruntime():
    assert "torch" in names(requirements("trainer"))
    assert "onnxruntime" not in names(requirements("engine", "--drop", "onnxruntime"))
