"""The serving benchmark's same-client comparison and load curve: what they write for
perf_analyzer and Triton, how they read perf_analyzer and h2load, and perf_analyzer itself
against a real engine (when scripts/getPerfAnalyzer.sh has installed it)."""

from __future__ import annotations

import json
import subprocess

import pytest

from benchmarks import load_curve, same_client
from datasentinel.model_config import INPUT_NAME
from tests.conftest import build_tiny_model

PA_CSV = (
    "Concurrency,Inferences/Second,Client Send,Client Recv,p50 latency,p90 latency,"
    "p95 latency,p99 latency\n16,2048.5,5,5,1378,3248,4480,7133\n"
)


def test_perf_analyzer_report_is_read_by_column_name():
    figures = same_client.pa_figures(PA_CSV, rows=1024)
    assert figures == pytest.approx(
        {"vectors_per_s": 2048.5, "calls_per_s": 2048.5 / 1024, "p50_ms": 1.378, "p99_ms": 7.133}
    )


def test_perf_analyzer_report_with_columns_in_another_order_reads_the_same():
    header, values = (line.split(",") for line in PA_CSV.splitlines())
    order = list(reversed(range(len(header))))
    shuffled = ",".join(header[i] for i in order) + "\n" + ",".join(values[i] for i in order)
    assert same_client.pa_figures(shuffled, 1024) == same_client.pa_figures(PA_CSV, 1024)


def test_triton_repository_serves_the_same_onnx_file_under_the_engines_model_name(tmp_path):
    model = build_tiny_model(tmp_path / "models", dim=6)
    root = same_client.model_repository(tmp_path / "models", tmp_path / "repo", max_batch=512)
    onnx_file = root / same_client.MODEL / "1" / "model.onnx"
    assert onnx_file.read_bytes() == (model.dir / "model.onnx").read_bytes()
    config = (root / same_client.MODEL / "config.pbtxt").read_text()
    assert 'backend: "onnxruntime"' in config and "max_batch_size: 512" in config
    assert f'name: "{INPUT_NAME}" data_type: TYPE_FP32 dims: [ 6 ]' in config


def test_input_data_gives_perf_analyzer_finite_rows_of_the_models_width(tmp_path):
    build_tiny_model(tmp_path / "models", dim=5)
    path = same_client.input_data(tmp_path / "models", tmp_path / "in.json", samples=4)
    steps = json.loads(path.read_text())["data"]
    assert len(steps) == 4
    for step in steps:
        assert step[INPUT_NAME]["shape"] == [5]
        assert len(step[INPUT_NAME]["content"]) == 5
        assert all(abs(v) < 10 for v in step[INPUT_NAME]["content"])


H2LOAD_OUT = (
    "finished in 3.00s, 999.67 req/s, 100KB/s\n"
    "requests: 3000 total, 3000 started, 2990 done, 2980 succeeded, 4 failed, 3 errored, "
    "3 timeout\n"
)


def test_load_point_counts_answered_calls_over_the_duration_and_the_rest_as_lost():
    log = "".join(f"1700000000000000\t200\t{us}\n" for us in (1000, 2000, 3000, 4000, 100000))
    figures = load_curve.figures(H2LOAD_OUT, log, seconds=2.0)
    assert figures["calls_per_s"] == 1490
    assert figures["lost"] == 10
    assert figures["p50_ms"] == 3.0
    assert figures["p99_ms"] == 4.0  # index int(0.99 * 4) = 3 of 5 sorted


def test_load_point_without_counts_fails_instead_of_reading_zero():
    with pytest.raises(RuntimeError, match="no counts"):
        load_curve.figures("connect failed\n", "", seconds=1.0)


def test_picture_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    points = {
        (name, rows, rate): {"calls_per_s": rate * 0.9, "p50_ms": 1.0, "p99_ms": 2.0}
        for name in ("engine x1", "echo")
        for rows, rates in load_curve.RATES.items()
        for rate in rates
    }
    load_curve.plot(points, tmp_path / "curve.png", "test")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.e2e
def test_perf_analyzer_runs_unchanged_against_the_engine(tmp_path, start_engine):
    """perf_analyzer reads ServerMetadata, ModelMetadata and ModelConfig before it sends
    anything and stops on what it cannot use; here it must measure the engine as it is."""
    binary = same_client.find_perf_analyzer(None)
    if binary is None:
        pytest.skip("perf_analyzer not installed (scripts/getPerfAnalyzer.sh)")
    build_tiny_model(tmp_path / "models", dim=8)
    engine = start_engine(tmp_path / "models", "--workers", "1")
    data = same_client.input_data(tmp_path / "models", tmp_path / "in.json")
    try:
        figures = same_client.perf_analyzer(binary, engine.port, 4, 2, tmp_path, data)
    except subprocess.TimeoutExpired:
        pytest.fail("perf_analyzer did not finish")
    assert figures["vectors_per_s"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0
