import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from datasentinel.model_config import (
    EXPECTED_OUTPUT,
    FEATURE_ERRORS_OUTPUT,
    INPUT_NAME,
    SCORE_OUTPUT,
)
from datasentinel.trainer.detector.graph import build_scoring_graph, calibrate
from datasentinel.trainer.errors import ExportError
from datasentinel.trainer.export import onnx_export


def _fresh_rows(result, n_rows: int, seed: int = 1) -> np.ndarray:
    """Rows the model never saw, spread wider than the training data to reach the tails."""
    robust = result.graph.groups[0]
    centre, scale = robust.centre.numpy(), robust.scale.numpy()
    noise = np.random.default_rng(seed).standard_normal((n_rows, len(centre)))
    return (centre + 3 * scale * noise).astype(np.float32)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_onnx_matches_torch_on_fresh_rows(tiny_run, batch_size):
    rows = _fresh_rows(tiny_run, batch_size)
    session = ort.InferenceSession(tiny_run.model_path, providers=["CPUExecutionProvider"])
    score, errors = session.run([SCORE_OUTPUT, FEATURE_ERRORS_OUTPUT], {INPUT_NAME: rows})
    with torch.no_grad():
        want_score, want_errors, _ = tiny_run.graph(torch.from_numpy(rows))
    assert score.shape == (batch_size,)
    np.testing.assert_allclose(score, want_score.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(errors, want_errors.numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_input_is_features_with_dynamic_batch(tiny_run):
    (model_input,) = onnx.load(tiny_run.model_path).graph.input
    batch, width = model_input.type.tensor_type.shape.dim
    assert model_input.name == INPUT_NAME
    assert batch.dim_param and not batch.dim_value
    assert width.dim_value == tiny_run.config.input_dim


def test_onnx_file_is_self_contained(tiny_run):
    model = onnx.load(tiny_run.model_path, load_external_data=False)
    assert model.graph.initializer
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert not list(tiny_run.model_path.parent.glob("*.data"))


def test_export_refuses_onnx_that_disagrees_with_torch(monkeypatch):
    rows = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    graph = build_scoring_graph(rows, [8], 2)
    drifted = copy.deepcopy(graph).eval()
    with torch.no_grad():
        for group in drifted.groups:  # whichever component wins a row, its terms move
            group.autoencoder.decoder[-1].bias += 0.5
    torch_export = onnx_export._torch_export
    # The file written is a different model from the one export_model is given.
    monkeypatch.setattr(onnx_export, "_torch_export", lambda _g, d, p: torch_export(drifted, d, p))
    with pytest.raises(ExportError, match="disagrees with torch"):
        onnx_export.export_model(graph, rows)


def _large_graph():
    """An untrained, calibrated graph on 9 correlated features of magnitude ~1e6, and rows to
    check it on: its training rows and some 30x further out."""
    rng = np.random.default_rng(0)
    signals = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 9))
    rows = (1e6 * (signals + 0.1 * rng.normal(size=(600, 9)))).astype(np.float32)
    torch.manual_seed(0)
    graph = build_scoring_graph(rows, None, None, members=5).eval()
    calibrate(graph, rows)
    return graph, np.concatenate([rows[:200], 30 * rows[:100]])


def _exported_as(monkeypatch, module) -> None:
    """export_model writes ``module`` instead of the graph it is given."""
    torch_export = onnx_export._torch_export
    monkeypatch.setattr(onnx_export, "_torch_export", lambda _g, d, p: torch_export(module, d, p))


def test_parity_fits_the_magnitude_of_large_features():
    graph, rows = _large_graph()
    # raises ExportError on a mismatch
    onnx_bytes = onnx_export.export_model(graph, rows).onnx_bytes
    # What the old absolute tolerance (1e-5, plus 1e-4 of each value) made of the same model:
    # float32 rounding at 1e6 refused, for an expected value near 0 of a far row.
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = [o.numpy() for o in graph(torch.from_numpy(rows))]
    got = session.run(onnx_export.OUTPUTS, {INPUT_NAME: rows})
    old = [np.allclose(g, w, rtol=1e-4, atol=1e-5) for g, w in zip(got, want, strict=True)]
    assert not all(old)


def test_parity_still_refuses_slightly_wrong_weights_on_large_features(monkeypatch):
    graph, rows = _large_graph()
    drifted = copy.deepcopy(graph)
    with torch.no_grad():
        for group in drifted.groups:
            group.autoencoder.decoder[-1].weight *= 1.01
    _exported_as(monkeypatch, drifted)
    with pytest.raises(ExportError, match="disagrees with torch"):
        onnx_export.export_model(graph, rows)


class _RowsMixedUp(torch.nn.Module):
    """A graph that answers each row with another row's outputs."""

    def __init__(self, graph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, features):
        return self.graph(features.flip(0))


def test_parity_still_refuses_rows_mixed_up(monkeypatch):
    graph, rows = _large_graph()
    _exported_as(monkeypatch, _RowsMixedUp(copy.deepcopy(graph)))
    with pytest.raises(ExportError, match="disagrees with torch"):
        onnx_export.export_model(graph, rows)


def test_parity_is_checked_on_rows_with_missing_cells():
    rows = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    missing = onnx_export.parity_batches(rows)[-1]
    assert np.isnan(missing).any() and not np.isnan(missing).all(axis=0).any()


def test_exported_outputs_are_score_feature_errors_and_expected(tiny_run):
    outputs = [(o.name, _dims(o)) for o in onnx.load(tiny_run.model_path).graph.output]
    assert outputs == [(SCORE_OUTPUT, 1), (FEATURE_ERRORS_OUTPUT, 2), (EXPECTED_OUTPUT, 2)]


def _dims(value) -> int:
    return len(value.type.tensor_type.shape.dim)


# The reported failure: a default fit on 49,097 rows x 9 features of large magnitude, refused for
# a difference of 0.00030517578125 (5 units in the last place of a value in [512, 1024)) in
# 'feature_errors', where the column's far rows score in the hundreds.
REPORTED_DIFFERENCE = 0.00030517578125


def test_parity_accepts_the_reported_rounding_of_a_large_error_column():
    expected = np.array([[0.8, 0.02], [1.9, 0.5], [700.0, 3.1]], dtype=np.float32)
    actual = expected.copy()
    actual[1, 0] += REPORTED_DIFFERENCE
    scale = onnx_export.output_scale((expected,))
    onnx_export.assert_close(FEATURE_ERRORS_OUTPUT, 3, expected, actual, scale)


def test_parity_accepts_rounding_that_torch_makes_too():
    """A column of small values computed from large ones (cancellation): float64 shows torch's
    own float32 result off by 1e-4, so ONNX's 3e-4 is rounding, not a different model."""
    expected = np.array([[0.3], [0.9]], dtype=np.float32)
    actual = expected + np.array([[0.0], [REPORTED_DIFFERENCE]], dtype=np.float32)
    scale = onnx_export.output_scale((expected,))
    onnx_export.assert_close(SCORE_OUTPUT, 2, expected, actual, scale, rounding=1e-4)
    with pytest.raises(ExportError, match="largest difference 0.000305"):
        onnx_export.assert_close(SCORE_OUTPUT, 2, expected, actual, scale, rounding=0.0)


def test_export_falls_back_to_the_plain_layout_when_the_faster_ones_disagree(monkeypatch):
    graph, rows = _large_graph()
    drifted = copy.deepcopy(graph)
    with torch.no_grad():
        for group in drifted.groups:
            group.autoencoder.decoder[-1].bias += 0.5
    layout = onnx_export.serving_layout
    monkeypatch.setattr(
        onnx_export,
        "serving_layout",
        lambda g, name: layout(g if name == "plain" else drifted, name),
    )
    exported = onnx_export.export_model(graph, rows)
    assert "plain layout" in exported.warnings[0] and "lean and fused" in exported.warnings[0]
    session = ort.InferenceSession(exported.onnx_bytes, providers=["CPUExecutionProvider"])
    (score,) = session.run([SCORE_OUTPUT], {INPUT_NAME: rows})
    with torch.no_grad():
        want, _, _ = graph(torch.from_numpy(rows))
    np.testing.assert_allclose(score, want.numpy(), rtol=1e-3)
