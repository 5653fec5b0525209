"""Shared fixtures: tiny model artifacts built without torch, and a real engine process."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from onnx import TensorProto, helper, numpy_helper

from datasentinel.model_config import (
    CONFIG_FILENAME,
    EXPECTED_OUTPUT,
    FEATURE_ERRORS_OUTPUT,
    INPUT_NAME,
    MODEL_FILENAME,
    SCORE_OUTPUT,
    Columns,
    MissingValues,
    ModelConfig,
    Normalisation,
    TrainingSummary,
    Versions,
    save_config,
    sha256_file,
    write_atomic,
)
from datasentinel.severity import table_from_scores

REPO = Path(__file__).resolve().parent.parent
SERVICE = "datasentinel.v1.AnomalyScorer"


@dataclass(frozen=True)
class TinyModel:
    """A linear "autoencoder" (projection onto a subspace) with known maths, for engine tests."""

    dir: Path
    mean: np.ndarray
    std: np.ndarray
    projection: np.ndarray
    threshold: float
    version: str

    @property
    def dim(self) -> int:
        return len(self.mean)

    def expected(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and feature errors (a missing value, NaN, filled in with the mean, as the
        ``v3_extras`` graph does)."""
        z = (np.where(np.isnan(x), self.mean, x) - self.mean) / self.std
        errors = (z - z @ self.projection) ** 2
        return errors.mean(axis=1), errors

    def reconstruction(self, x: np.ndarray) -> np.ndarray:
        """The ``expected`` output of a ``v3_extras`` model: the reconstruction in the
        features' own units."""
        z = (np.where(np.isnan(x), self.mean, x) - self.mean) / self.std
        return (z @ self.projection) * self.std + self.mean


def build_tiny_model(
    directory: Path,
    dim: int = 4,
    threshold: float = 0.5,
    version: str = "tiny-1",
    seed: int = 0,
    v3_extras: bool = False,
) -> TinyModel:
    """``v3_extras``: a schema-3 model with everything version 3 can describe: NaN filled in
    with the centre (mean) by the graph's first ops (IsNaN, Where) and ``missing_values`` saying
    so, an ``expected`` output (the reconstruction in the features' units), a severity table
    from 2,000 rows drawn like the training data, ``training.threshold`` and a key column."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=dim).astype(np.float32)
    std = rng.uniform(0.5, 2.0, size=dim).astype(np.float32)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, max(1, dim // 2))))
    projection = (basis @ basis.T).astype(np.float32)
    source, fill, expected, outputs = INPUT_NAME, [], [], []
    if v3_extras:
        source = "filled"
        fill = [
            helper.make_node("IsNaN", [INPUT_NAME], ["isnan"]),
            helper.make_node("Where", ["isnan", "mean", INPUT_NAME], [source]),
        ]
        expected = [
            helper.make_node("Mul", ["recon", "std"], ["recon_scaled"]),
            helper.make_node("Add", ["recon_scaled", "mean"], [EXPECTED_OUTPUT]),
        ]
        outputs = [
            helper.make_tensor_value_info(EXPECTED_OUTPUT, TensorProto.FLOAT, ["batch", dim])
        ]
    graph = helper.make_graph(
        [
            *fill,
            helper.make_node("Sub", [source, "mean"], ["centred"]),
            helper.make_node("Div", ["centred", "std"], ["z"]),
            helper.make_node("MatMul", ["z", "projection"], ["recon"]),
            helper.make_node("Sub", ["z", "recon"], ["residual"]),
            helper.make_node("Mul", ["residual", "residual"], [FEATURE_ERRORS_OUTPUT]),
            helper.make_node(
                "ReduceMean", [FEATURE_ERRORS_OUTPUT, "axes"], [SCORE_OUTPUT], keepdims=0
            ),
            *expected,
        ],
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", dim])],
        [
            helper.make_tensor_value_info(SCORE_OUTPUT, TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info(FEATURE_ERRORS_OUTPUT, TensorProto.FLOAT, ["batch", dim]),
            *outputs,
        ],
        [
            numpy_helper.from_array(mean, "mean"),
            numpy_helper.from_array(std, "std"),
            numpy_helper.from_array(projection, "projection"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    write_atomic(directory / MODEL_FILENAME, model.SerializeToString())
    tiny = TinyModel(directory, mean, std, projection, threshold, version)
    extras = {}
    if v3_extras:
        held_out = mean + std * rng.normal(size=(2000, dim)).astype(np.float32)
        extras = dict(
            expected_output=EXPECTED_OUTPUT,
            missing_values=MissingValues(fill=mean.tolist()),
            severity=table_from_scores(tiny.expected(held_out)[0], "validation"),
            columns=Columns(keys=["id"]),
            training_threshold=threshold,
        )
    save_config(tiny_config(directory, mean, std, threshold, version, **extras), directory)
    return tiny


def tiny_config(
    directory: Path,
    mean,
    std,
    threshold: float,
    version: str,
    training_threshold: float | None = None,
    **v3_fields,
) -> ModelConfig:
    """The tiny model's config; ``training_threshold`` and ``v3_fields`` (ModelConfig's
    version-3 fields) for a ``v3_extras`` model."""
    dim = len(mean)
    return ModelConfig(
        model_sha256=sha256_file(directory / MODEL_FILENAME),
        model_version=version,
        created_at=datetime.now(UTC),
        feature_names=[f"f{i}" for i in range(dim)],
        input_dim=dim,
        threshold=threshold,
        normalisation=Normalisation(mean=mean.tolist(), std=std.tolist()),
        versions=Versions(datasentinel="test", opset=18),
        training=TrainingSummary(
            data_source="tests",
            rows_train=1,
            rows_validation=1,
            epochs_run=1,
            best_epoch=1,
            best_validation_loss=0.0,
            threshold_quantile=0.99,
            seed=0,
            threshold=training_threshold,
        ),
        **v3_fields,
    )


def kubernetes_volume(models_dir: Path, source: Path, stamp: str) -> None:
    """Lays ``source``'s artifacts out in ``models_dir`` as a Kubernetes ConfigMap or Secret
    volume does: the files in a timestamped folder ``..<stamp>``, ``..data`` a link to it (a new
    one swapped in by a rename, atomically), and each file a link to ``..data/<file>``."""
    models_dir.mkdir(parents=True, exist_ok=True)
    stamped = models_dir / f"..{stamp}"
    shutil.copytree(source, stamped)
    (models_dir / "..data_tmp").symlink_to(stamped.name)
    (models_dir / "..data_tmp").rename(models_dir / "..data")
    for name in (CONFIG_FILENAME, MODEL_FILENAME):
        if not (models_dir / name).is_symlink():
            (models_dir / name).symlink_to(Path("..data") / name)


def run_module(module: str, *args, timeout: float = 300, stdin: str | None = None):
    """``python -m module args`` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV's rows as dicts keyed by its header."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def tiny_model(tmp_path: Path) -> TinyModel:
    return build_tiny_model(tmp_path / "models")


@dataclass
class EngineProcess:
    """A real ``datasentinel-engine`` child process; its log is collected line by line."""

    process: subprocess.Popen
    port: int = 0
    metrics_port: int = 0
    http_port: int = 0  # the REST port, when the engine serves one (--http-port)
    host: str = "127.0.0.1"  # the address it listens on (read back with the port)
    lines: list[str] = field(default_factory=list)
    # TLS credentials for channel() (and so wait_serving) when the engine serves TLS.
    credentials: grpc.ChannelCredentials | None = None
    # The thread that copies the process's output into ``lines`` (spawn_engine).
    reader: threading.Thread | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def channel(self) -> grpc.Channel:
        if self.credentials is not None:
            return grpc.secure_channel(self.address, self.credentials)
        return grpc.insecure_channel(self.address)

    def log(self) -> str:
        """Everything logged so far; once the process has exited, everything it logged: the
        reader thread is given time to copy the last lines (under load a test read the log right
        after ``process.wait`` and missed a worker's last line)."""
        if self.reader is not None and self.process.poll() is not None:
            self.reader.join(10)
        return "".join(self.lines)

    def wait_log(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Returns once ``text`` is in the log ``count`` times (e.g. one "SERVING model" per
        worker: health answers SERVING as soon as the first worker is)."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not {count} times in the log:\n{self.log()}")
            time.sleep(0.05)

    def stop(self, sig: int | None = None, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig or 15)
        return self.process.wait(timeout)


def engine_command(models_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "datasentinel.engine", "--models-dir", str(models_dir), *args]


def spawn_engine(
    models_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> EngineProcess:
    """Starts the engine on a free port (port 0) and reads the port back from its log.
    ``credentials``: the engine serves TLS; channel() and wait_serving use them."""
    command = engine_command(
        models_dir, "--bind-host", "127.0.0.1", "--port", "0", "--metrics-port", "0", *args
    )
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = EngineProcess(process, credentials=credentials)
    found = threading.Event()

    def pump() -> None:
        for line in process.stdout:
            engine.lines.append(line)
            metrics = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", line)
            if metrics:
                engine.metrics_port = int(metrics.group(1))
            rest = re.search(r"REST on https?://[\d.]+:(\d+)/v2", line)
            if rest:
                engine.http_port = int(rest.group(1))
            match = re.search(r"listening on ([\d.]+):(\d+)", line)
            if match:
                engine.host, engine.port = match.group(1), int(match.group(2))
                found.set()
        found.set()

    engine.reader = threading.Thread(target=pump, daemon=True)
    engine.reader.start()
    found.wait(60)
    return engine


def wait_serving(engine: EngineProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with engine.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=2)
                if status.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"engine never became SERVING; log:\n{engine.log()}")


@pytest.fixture
def start_engine() -> Iterator:
    """Starts engines that are stopped (SIGTERM, then SIGKILL) when the test ends."""
    started: list[EngineProcess] = []

    def start(models_dir: Path, *args: str, wait: bool = True, **kwargs) -> EngineProcess:
        engine = spawn_engine(models_dir, *args, **kwargs)
        started.append(engine)
        if wait:
            assert engine.port, f"engine did not report a port; log:\n{engine.log()}"
            wait_serving(engine)
        return engine

    yield start
    for engine in started:
        if engine.process.poll() is None:
            engine.process.terminate()
            try:
                engine.process.wait(15)
            except subprocess.TimeoutExpired:
                engine.process.kill()
