"""The serving layout computes what the trained graph computes, for every architecture."""

import numpy as np
import onnx
import pytest
import torch

from datasentinel.trainer.detector.fused import FusedGroup, ServingGraph, serving_graph
from datasentinel.trainer.detector.graph import MemberGroup, build_scoring_graph
from datasentinel.trainer.export import onnx_export

ARCHITECTURES = [
    (8, None, None, 5),
    (8, None, None, 1),
    (6, [12, 6], 3, 4),
    (5, [], 2, 3),
    (3, None, 1, 5),
]
ARCHITECTURE_IDS = ["default-5", "one-member", "two-hidden", "no-hidden", "code-of-1"]


def _graph(dim: int, hidden, latent, members: int, seed: int = 0):
    torch.manual_seed(seed)
    rows = np.random.default_rng(seed).normal(3.0, 2.0, size=(400, dim)).astype(np.float32)
    graph = build_scoring_graph(rows, hidden, latent, members=members).eval()
    with torch.no_grad():  # calibrated members and components have different scales
        for group in graph.groups:
            group.autoencoder.member_scale.uniform_(0.2, 5.0)
        graph.component_scale.uniform_(0.5, 2.0)
    return graph, rows


def _with_far_rows(rows: np.ndarray) -> torch.Tensor:
    # Far-out rows: large errors, where soften bends.
    return torch.from_numpy(np.concatenate([rows, rows * 50]))


@pytest.mark.parametrize(
    ("dim", "hidden", "latent", "members"), ARCHITECTURES, ids=ARCHITECTURE_IDS
)
@pytest.mark.parametrize("group_index", [0, 1], ids=["robust-group", "spread-group"])
def test_fused_group_equals_the_trained_group(dim, hidden, latent, members, group_index):
    graph, rows = _graph(dim, hidden, latent, members)
    group = graph.groups[group_index]
    x = _with_far_rows(rows)
    with torch.no_grad():
        want = group.feature_errors(x)
        errors = FusedGroup(group).eval().feature_errors(x)
    torch.testing.assert_close(errors, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("dim", "hidden", "latent", "members"), ARCHITECTURES, ids=ARCHITECTURE_IDS
)
@pytest.mark.parametrize("group_index", [0, 1], ids=["robust-group", "spread-group"])
def test_fused_expected_values_are_the_members_mean_reconstruction(
    dim, hidden, latent, members, group_index
):
    graph, rows = _graph(dim, hidden, latent, members)
    group = graph.groups[group_index]
    x = _with_far_rows(rows)
    with torch.no_grad():  # the plain computation, not terms_and_expected
        mean_reconstruction = group.autoencoder(group.standardise(x)).mean(dim=0)
        want = group.centre + group.scale * mean_reconstruction
        _, expected = FusedGroup(group).eval().terms_and_expected(x)
    # Recovered as the input minus a difference: rounding at the input's magnitude (the far
    # rows are 50x the data) or the output's, whichever is larger.
    magnitude = torch.maximum(want.abs().amax(dim=0), x.abs().amax(dim=0))
    assert bool(((expected - want).abs() <= 1e-5 * magnitude).all())


@pytest.mark.parametrize(
    ("dim", "hidden", "latent", "members"), ARCHITECTURES, ids=ARCHITECTURE_IDS
)
def test_serving_graph_equals_the_trained_graph(dim, hidden, latent, members):
    graph, rows = _graph(dim, hidden, latent, members)
    x = _with_far_rows(rows)
    with torch.no_grad():
        want_score, want_errors, want_expected = graph(x)
        score, errors, expected = ServingGraph(graph).eval()(x)
    torch.testing.assert_close(errors, want_errors, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(score, want_score, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(expected, want_expected, rtol=1e-5, atol=1e-4)


def _layouts(graph) -> list[type]:
    return [type(group) for group in serving_graph(graph).groups]


def test_narrow_models_are_served_fused_and_wide_ensembles_batched():
    narrow, _ = _graph(8, None, None, 5)
    wide, _ = _graph(64, None, None, 5)
    wide_single, _ = _graph(64, None, None, 1)
    assert _layouts(narrow) == [FusedGroup, FusedGroup]
    # Block-diagonal: most of a wide ensemble's weights would be zeros.
    assert _layouts(wide) == [MemberGroup, MemberGroup]
    assert _layouts(wide_single) == [FusedGroup, FusedGroup]  # one member: no zeros


def test_exported_default_ensemble_is_the_fused_layout_and_matches_torch():
    graph, rows = _graph(8, None, None, 5)
    fused = onnx_export.serving_layout(graph, "fused")
    model = onnx.load_from_string(onnx_export._checked_export(fused, graph, rows))  # and parity
    ops = [node.op_type for node in model.graph.node]
    assert "Expand" not in ops  # the batched layout copies the input once per member
    # One Log per group (soften of all members at once) and one in the tail's signed log.
    assert ops.count("Log") == 3 and "Gemm" in ops
