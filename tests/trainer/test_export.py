import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from datasentinel.model_config import FEATURE_ERRORS_OUTPUT, INPUT_NAME, SCORE_OUTPUT
from datasentinel.trainer import export
from datasentinel.trainer.errors import ExportError
from datasentinel.trainer.model import build_scoring_graph


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
    torch_export = export._torch_export
    # The file written is a different model from the one export_onnx is given.
    monkeypatch.setattr(export, "_torch_export", lambda _g, d, p: torch_export(drifted, d, p))
    with pytest.raises(ExportError, match="disagrees with torch"):
        export.export_onnx(graph, rows)
