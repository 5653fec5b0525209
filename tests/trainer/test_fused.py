"""The serving layout computes what the trained graph computes, for every architecture."""

import numpy as np
import onnx
import pytest
import torch

from datasentinel.trainer import export
from datasentinel.trainer.fused import FusedScoringGraph, serving_graph
from datasentinel.trainer.model import build_scoring_graph


def _graph(dim: int, hidden, latent, members: int, seed: int = 0):
    torch.manual_seed(seed)
    rows = np.random.default_rng(seed).normal(3.0, 2.0, size=(400, dim)).astype(np.float32)
    graph = build_scoring_graph(rows, hidden, latent, members=members).eval()
    with torch.no_grad():  # calibrated members have different scales; make them so here too
        graph.autoencoder.member_scale.uniform_(0.2, 5.0)
    return graph, rows


@pytest.mark.parametrize(
    ("dim", "hidden", "latent", "members"),
    [(8, None, None, 5), (8, None, None, 1), (6, [12, 6], 3, 4), (5, [], 2, 3), (3, None, 1, 5)],
    ids=["default-5", "one-member", "two-hidden", "no-hidden", "code-of-1"],
)
def test_fused_graph_equals_the_trained_graph(dim, hidden, latent, members):
    graph, rows = _graph(dim, hidden, latent, members)
    far = rows * 50  # far-out rows: large errors, where soften bends
    x = torch.from_numpy(np.concatenate([rows, far]))
    with torch.no_grad():
        want_score, want_errors = graph(x)
        score, errors = FusedScoringGraph(graph).eval()(x)
    torch.testing.assert_close(errors, want_errors, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(score, want_score, rtol=1e-5, atol=1e-6)


def test_narrow_models_are_served_fused_and_wide_ensembles_batched():
    narrow, _ = _graph(8, None, None, 5)
    wide, _ = _graph(64, None, None, 5)
    wide_single, _ = _graph(64, None, None, 1)
    assert isinstance(serving_graph(narrow), FusedScoringGraph)
    assert serving_graph(wide) is wide  # block-diagonal: ~80% of its weights would be zeros
    assert isinstance(serving_graph(wide_single), FusedScoringGraph)  # one member: no zeros


def test_exported_default_ensemble_is_the_fused_layout_and_matches_torch():
    graph, rows = _graph(8, None, None, 5)
    model = onnx.load_from_string(export.export_onnx(graph, rows))  # checks parity itself
    ops = [node.op_type for node in model.graph.node]
    assert "Expand" not in ops  # the batched layout copies the input once per member
    assert ops.count("Log") == 1 and "Gemm" in ops
