"""ONNX export of the scoring graph, checked against torch before anything is written."""

from __future__ import annotations

import copy
import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from datasentinel.model_config import (
    EXPECTED_OUTPUT,
    FEATURE_ERRORS_OUTPUT,
    INPUT_NAME,
    MODEL_FILENAME,
    SCORE_OUTPUT,
)
from datasentinel.trainer.detector.fused import serving_graph
from datasentinel.trainer.detector.graph import ScoringGraph
from datasentinel.trainer.detector.lean import NotLean, lean_graph
from datasentinel.trainer.errors import ExportError

log = logging.getLogger(__name__)

OPSET = 18
OUTPUTS = [SCORE_OUTPUT, FEATURE_ERRORS_OUTPUT, EXPECTED_OUTPUT]
# ONNX Runtime and torch add up in different orders, so float32 rounding differs by a few units
# in the last place of the largest values a computation passes through, not of each result: a
# small feature error of a far-out row is the difference of two large numbers. So each value
# may differ by PARITY_RTOL of itself plus PARITY_SCALED of its column's largest magnitude
# (over every row checked; for the score, of all scores; for the expected values, of the input
# column too, which they are computed from: input - difference), plus ROUNDING_FACTOR times
# torch's own float32 rounding of that value (its distance from the same graph run in float64):
# where the maths loses digits to cancellation, both float32 runs lose them, and the float64 run
# says how many. A default fit on 49k rows and 9 features failed the old absolute 1e-5 by 3e-4;
# a real mismatch (other weights, rows mixed up) moves values by a sizeable share of the scale,
# and away from the float64 result, which rounding does not.
PARITY_RTOL = 1e-4
PARITY_SCALED = 1e-4
ROUNDING_FACTOR = 16.0
# Parity is checked on a few hundred real rows, on one row and on a large batch, because a
# wrongly fixed batch axis only shows at batch sizes other than the traced one; and on the
# rows with cells missing (NaN), which the graph fills in itself.
PARITY_ROWS = 300
LARGE_BATCH = 1000
# Every this many cells of the missing-values batch is NaN (a prime: it walks every column).
MISSING_EVERY = 7


@dataclass(frozen=True)
class Exported:
    """The checked ONNX bytes, and what the user should hear about how they were made."""

    onnx_bytes: bytes
    warnings: list[str] = field(default_factory=list)


def export_model(graph: ScoringGraph, reference_rows: np.ndarray) -> Exported:
    """The graph as self-contained ONNX bytes whose outputs match torch on ``reference_rows``
    (raw feature rows, e.g. the validation split). The layouts in LAYOUTS are tried in turn:
    the lean one (trainer/detector/lean.py; too wide a group skips it), then the fused one
    (fused.py, which scores through graph.py's own helpers), then the trained layout, which
    computes op for op what torch computes. The first that passes the parity check is kept, so
    a fit is never lost to a faster layout, and one that disagreed is said in a warning (scores
    right, serving costs more). Raises ExportError only when every layout disagrees."""
    graph.eval()
    failed: list[str] = []
    for name in LAYOUTS:
        try:
            module = serving_layout(graph, name)
        except NotLean as reason:
            log.info("not exported in the lean layout: %s", reason)
            continue
        try:
            onnx_bytes = _checked_export(module, graph, reference_rows)
        except ExportError as error:
            if name == LAYOUTS[-1]:
                raise
            log.warning("the %s ONNX layout failed the parity check (%s)", name, error)
            failed.append(name)
            continue
        return Exported(onnx_bytes, [_fallback_warning(failed, name)] if failed else [])
    raise AssertionError("unreachable: the last layout returns or raises")


# Fastest first; "plain" is the trained layout itself.
LAYOUTS = ("lean", "fused", "plain")


def serving_layout(graph: ScoringGraph, name: str) -> torch.nn.Module:
    """``graph`` laid out as ``name`` (one of LAYOUTS); raises NotLean for "lean" when the
    graph does not fit it."""
    if name == "lean":
        return lean_graph(graph)
    return serving_graph(graph, fused=name == "fused")


def _fallback_warning(failed: list[str], name: str) -> str:
    return (
        f"the model was exported in its {name} layout (the faster {' and '.join(failed)} "
        "layout disagreed with torch beyond float32 rounding): scores are right, serving costs "
        "more per row"
    )


def _checked_export(
    module: torch.nn.Module, graph: ScoringGraph, reference_rows: np.ndarray
) -> bytes:
    """``module`` (a layout of ``graph``) as ONNX bytes, checked against ``graph`` itself."""
    input_dim = reference_rows.shape[1]
    with tempfile.TemporaryDirectory(prefix="trainer-export-") as tmp:
        path = Path(tmp) / MODEL_FILENAME
        _torch_export(module.eval(), input_dim, path)
        # onnx.load folds any external-data side file back in, so the bytes stand alone.
        model = onnx.load(path)
    check_signature(model, input_dim)
    onnx_bytes = model.SerializeToString()
    check_parity(graph, onnx_bytes, reference_rows)
    log.info(
        "ONNX export matches torch (within %g of each value plus %g of its column's largest, "
        "plus %g times torch's own float32 rounding)",
        PARITY_RTOL,
        PARITY_SCALED,
        ROUNDING_FACTOR,
    )
    return onnx_bytes


def _torch_export(graph: torch.nn.Module, input_dim: int, path: Path) -> None:
    # The TorchScript exporter: the graph is a fixed sequence of tensor ops, which it traces in
    # about 0.1 s where torch.export (dynamo=True) took 1.5-4 s, most of a small model's fit.
    # Two example rows, so no dimension is specialised to 1.
    example = torch.zeros((2, input_dim), dtype=torch.float32)
    with _quiet_exporter():
        torch.onnx.export(
            graph,
            (example,),
            path,
            input_names=[INPUT_NAME],
            output_names=OUTPUTS,
            dynamo=False,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
            opset_version=OPSET,
            verbose=False,
        )


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter and its optimiser log each pass at INFO and warn about optional packages we
    do not use (torchvision) and deprecations inside torch; none of it helps someone training a
    model. Errors still get through."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def check_signature(model: onnx.ModelProto, input_dim: int) -> None:
    """One float input ``[batch, input_dim]`` with a symbolic batch axis, the agreed outputs, and
    no tensor stored outside the file."""
    onnx.checker.check_model(model)
    inputs = [(i.name, _shape(i)) for i in model.graph.input]
    if len(inputs) != 1 or inputs[0][0] != INPUT_NAME or not _is_batch_by(inputs[0][1], input_dim):
        raise ExportError(f"ONNX inputs are {inputs}, expected {INPUT_NAME} [batch, {input_dim}]")
    outputs = [o.name for o in model.graph.output]
    if outputs != OUTPUTS:
        raise ExportError(f"ONNX outputs are {outputs}, expected {OUTPUTS}")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ExportError("the ONNX model refers to external data; it must be one file")


def _shape(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _is_batch_by(shape: list[str | int], input_dim: int) -> bool:
    return len(shape) == 2 and isinstance(shape[0], str) and shape[1] == input_dim


def check_parity(graph: ScoringGraph, onnx_bytes: bytes, rows: np.ndarray) -> None:
    """ONNX Runtime's outputs must equal torch's on several batch sizes, within float32 rounding
    at the outputs' own magnitudes (PARITY_RTOL, PARITY_SCALED, ROUNDING_FACTOR); raises
    ExportError."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    exact = copy.deepcopy(graph).double().eval()
    batches = parity_batches(rows)
    wanted = [_torch_outputs(graph, batch) for batch in batches]
    scales = [output_scale(outputs) for outputs in zip(*wanted, strict=True)]
    expected = OUTPUTS.index(EXPECTED_OUTPUT)
    scales[expected] = np.maximum(scales[expected], output_scale(tuple(batches)))
    for batch, want_all in zip(batches, wanted, strict=True):
        actual = session.run(OUTPUTS, {INPUT_NAME: batch})
        exact_all = _torch_outputs(exact, batch.astype(np.float64))
        for name, want, got, scale, want_exact in zip(
            OUTPUTS, want_all, actual, scales, exact_all, strict=True
        ):
            rounding = np.abs(want.astype(np.float64) - want_exact)
            assert_close(name, len(batch), want, got, scale, rounding)


def parity_batches(rows: np.ndarray) -> list[np.ndarray]:
    """A few hundred rows, a single row, ``LARGE_BATCH`` rows (the rows repeated), and the few
    hundred rows with every ``MISSING_EVERY``-th cell missing."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    large = np.resize(rows, (LARGE_BATCH, rows.shape[1]))
    missing = rows[:PARITY_ROWS].copy()
    missing.reshape(-1)[::MISSING_EVERY] = np.nan
    return [rows[:PARITY_ROWS], rows[:1], large, missing]


def output_scale(outputs: tuple[np.ndarray, ...]) -> np.ndarray:
    """The largest magnitude of one output over every batch: per column for ``[N, D]``
    outputs, one number for the score."""
    values = np.abs(np.concatenate([np.atleast_2d(o.T).T for o in outputs]))
    return np.max(values, axis=0, initial=0.0, where=np.isfinite(values))


@torch.no_grad()
def _torch_outputs(graph: torch.nn.Module, batch: np.ndarray) -> list[np.ndarray]:
    return [output.numpy() for output in graph(torch.from_numpy(batch))]


def assert_close(
    name: str,
    n_rows: int,
    expected: np.ndarray,
    actual: np.ndarray,
    scale: np.ndarray,
    rounding: np.ndarray | float = 0.0,
) -> None:
    """Raises ExportError unless ``actual`` has ``expected``'s shape and every value is within
    PARITY_RTOL of itself plus PARITY_SCALED of ``scale`` (its column's largest magnitude) plus
    ROUNDING_FACTOR times ``rounding`` (torch's own float32 error on it: |float32 - float64|)."""
    worst = None
    if actual.shape == expected.shape:
        difference = np.abs(actual.astype(np.float64) - expected)
        allowed = PARITY_RTOL * np.abs(expected) + PARITY_SCALED * scale
        allowed = allowed + ROUNDING_FACTOR * np.nan_to_num(rounding, nan=0.0, posinf=0.0)
        finite = np.isfinite(expected)
        same_finite = bool((np.isfinite(actual) == finite).all())
        if same_finite and bool((difference[finite] <= allowed[finite]).all()):
            return
        worst = float(np.max(difference, initial=0.0, where=finite))
    raise ExportError(
        f"ONNX output {name!r} disagrees with torch on a batch of {n_rows} rows "
        f"(shape {actual.shape} vs {expected.shape}, largest difference {worst})"
    )
