"""The lean layout computes what the trained graph computes: in torch, and exported to ONNX."""

import copy
import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from datasentinel.model_config import INPUT_NAME
from datasentinel.trainer.detector.graph import build_scoring_graph, calibrate, combine
from datasentinel.trainer.detector.lean import Combination, LeanTail, NotLean, lean_graph
from datasentinel.trainer.detector.tail import GRID, TailTerms
from datasentinel.trainer.export import onnx_export

ARCHITECTURES = [
    (8, None, None, 5),
    (16, None, None, 5),
    (8, None, None, 1),
    (6, [12, 6], 3, 4),
    (5, [], 2, 3),
    (3, None, 1, 5),
]
ARCHITECTURE_IDS = ["default-5", "16-features", "one-member", "two-hidden", "no-hidden", "code-1"]


def _graph(dim: int, hidden=None, latent=None, members: int = 5, seed: int = 0):
    """A calibrated untrained graph (every component and member at its own scale) and rows."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    rows = (rng.normal(3.0, 2.0, size=(400, dim)) * rng.uniform(0.1, 10.0, dim)).astype(np.float32)
    graph = build_scoring_graph(rows, hidden, latent, members=members).eval()
    with torch.no_grad():
        for group in graph.groups:
            group.autoencoder.member_scale.uniform_(0.2, 5.0)
    calibrate(graph, rows)
    return graph, rows


def _hard_rows(rows: np.ndarray) -> np.ndarray:
    """The rows, the rows 50x out (soften bends, the tail extrapolates), and rows with every
    7th cell missing (NaN: the graph fills it in)."""
    missing = rows[:100].copy()
    missing.reshape(-1)[::7] = np.nan
    return np.concatenate([rows, rows * 50, -rows * 50, missing])


@pytest.mark.parametrize(
    ("dim", "hidden", "latent", "members"), ARCHITECTURES, ids=ARCHITECTURE_IDS
)
def test_lean_graph_equals_the_trained_graph(dim, hidden, latent, members):
    graph, rows = _graph(dim, hidden, latent, members)
    x = torch.from_numpy(_hard_rows(rows))
    with torch.no_grad():
        want = graph(x)
        got = lean_graph(graph).eval()(x)
    for name, w, g in zip(["score", "feature_errors", "expected"], want, got, strict=True):
        magnitude = torch.maximum(w.abs().amax(dim=0), x.nan_to_num().abs().amax(dim=0))
        scale = magnitude if name == "expected" else w.abs().amax(dim=0)
        assert bool(((g - w).abs() <= 1e-5 * scale + 1e-5 * w.abs()).all()), name


@pytest.mark.parametrize(
    ("dim", "hidden", "latent", "members"), ARCHITECTURES, ids=ARCHITECTURE_IDS
)
def test_the_lean_layout_is_what_is_exported_and_it_passes_parity(dim, hidden, latent, members):
    graph, rows = _graph(dim, hidden, latent, members)
    exported = onnx_export.export_model(graph, _hard_rows(rows)[:600])  # checks parity itself
    ops = [node.op_type for node in onnx.load_from_string(exported.onnx_bytes).graph.node]
    assert not exported.warnings
    assert "TopK" in ops and ops.count("Where") == 1  # the fill; no where-chains


def test_a_trained_model_is_exported_lean(tiny_run):
    ops = [node.op_type for node in onnx.load(tiny_run.model_path).graph.node]
    assert "TopK" in ops and ops.count("Where") == 1


def test_wide_ensembles_are_not_lean_and_export_in_the_fused_layout():
    graph, rows = _graph(64)
    with pytest.raises(NotLean):
        lean_graph(graph)
    exported = onnx_export.export_model(graph, rows)
    ops = [node.op_type for node in onnx.load_from_string(exported.onnx_bytes).graph.node]
    assert not exported.warnings and "TopK" not in ops


def test_a_lean_layout_that_disagrees_falls_back_to_the_fused_one(monkeypatch):
    """What a change of the reference maths that the lean layout does not follow looks like:
    the export keeps the right scores and says so."""
    graph, rows = _graph(8)
    drifted = copy.deepcopy(graph)
    with torch.no_grad():
        drifted.component_offset += 0.5
    layout = onnx_export.serving_layout
    monkeypatch.setattr(
        onnx_export,
        "serving_layout",
        lambda g, name: layout(drifted if name == "lean" else g, name),
    )
    exported = onnx_export.export_model(graph, rows)
    assert "fused layout" in exported.warnings[0] and "lean" in exported.warnings[0]
    ops = [node.op_type for node in onnx.load_from_string(exported.onnx_bytes).graph.node]
    assert "TopK" not in ops


def test_the_tail_cells_extrapolate_and_interpolate_as_the_tail_table():
    rng = np.random.default_rng(0)
    rows = np.column_stack([rng.lognormal(size=500), rng.integers(0, 4, 500), np.ones(500)])
    tail = TailTerms.fit(rows.astype(np.float32))
    lean = LeanTail(tail, torch.tensor(2.0), tail.centre)
    # Every grid point (a cell edge), points between them, and far past both ends.
    grid = tail.lower[:, None] + tail.step[:, None] * torch.linspace(-40, GRID + 40, 999)
    z = torch.sign(grid) * torch.expm1(grid.abs())  # signed_log's inverse
    features = (tail.centre[:, None] + tail.scale[:, None] * z).T.contiguous()
    with torch.no_grad():
        want = tail(features) / 2.0
        got, _ = lean(features, features - tail.centre)
    finite = torch.isfinite(want)
    torch.testing.assert_close(got[finite], want[finite], rtol=1e-4, atol=1e-4)


def _ranked_parts(surprises: list[list[float]], dim: int = 3):
    """Component terms whose row means are the given surprises (offsets 0), and expected
    values that say which component they came from."""
    parts = []
    for index, column in enumerate(zip(*surprises, strict=True)):
        terms = torch.tensor(column)[:, None] * torch.linspace(0.5, 1.5, dim)
        parts.append((terms, torch.full((len(column), dim), float(index))))
    return parts


def test_the_combination_picks_what_combine_picks_ties_to_the_first():
    surprises = [[3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [1.0, 3.0, 3.0], [5, 5, 0]]
    parts = _ranked_parts(surprises)
    offsets = torch.zeros(3)
    combination = Combination(offsets, 3, [1.0, 1.0, 1.0])
    filled = torch.zeros(len(surprises), 3)
    terms = torch.cat([t for t, _ in parts], dim=1)
    deltas = torch.cat([e for _, e in parts], dim=1)  # expected - 0
    want = combine(parts, offsets)
    got = combination(filled, terms, deltas)
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g, w)
    # And ONNX Runtime's TopK breaks the ties as torch does here (the lower index first).
    session = _onnx_session(combination, filled, terms, deltas)
    onnx_outputs = session.run(None, {"f": filled.numpy(), "t": terms.numpy(), "d": deltas.numpy()})
    for w, g in zip(want, onnx_outputs, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-6)


def _onnx_session(module, *example) -> ort.InferenceSession:
    buffer = io.BytesIO()
    torch.onnx.export(
        module, example, buffer, input_names=["f", "t", "d"], dynamo=False, opset_version=18
    )
    return ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])


def test_exported_lean_model_runs_on_one_row_and_many(tiny_run):
    session = ort.InferenceSession(str(tiny_run.model_path), providers=["CPUExecutionProvider"])
    dim = session.get_inputs()[0].shape[1]
    for rows in (1, 1000):
        score, errors, expected = session.run(None, {INPUT_NAME: np.zeros((rows, dim), np.float32)})
        assert score.shape == (rows,) and errors.shape == expected.shape == (rows, dim)


def test_components_with_centres_of_their_own_are_still_equal():
    """By default every component centres on the training median (subtracted once); a method
    change could give one its own."""
    graph, rows = _graph(8)
    with torch.no_grad():
        graph.groups[1].centre += 0.3 * graph.groups[1].scale
        graph.tail.centre -= 0.2 * graph.tail.scale
    x = torch.from_numpy(_hard_rows(rows))
    with torch.no_grad():
        want = graph(x)
        got = lean_graph(graph).eval()(x)
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("dim", "chains"), [(4, 1), (8, 1), (16, 2)])
def test_narrow_graphs_join_their_groups_into_one_chain(dim, chains):
    graph, _ = _graph(dim)
    assert len(lean_graph(graph).groups) == chains
