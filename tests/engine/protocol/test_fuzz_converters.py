"""Property-based fuzzing of everything that reads client bytes: whatever arrives, the converters
and the safe decoder either return a well-formed batch or raise one of the engine's own errors
(which map to a status a client can act on), never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasentinel.engine.errors import EngineError
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.protocol.decoding import Undecodable, safe_deserializer
from datasentinel.engine.protocol.oip_converters import batch_from_infer_request
from datasentinel.engine.protocol.v1_converters import batch_from_request
from datasentinel.engine.scoring.tensors import float32_rows
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.v1 import scoring_pb2 as pb
from tests.conftest import build_tiny_model

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no example files in the working tree; failures print their example
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
DIM = 4
MAX_BYTES = 4096


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tiny = build_tiny_model(tmp_path_factory.mktemp("fuzz") / "models", dim=DIM)
    return load_model(tiny.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))


def well_formed(batch) -> None:
    """What the scoring core may rely on from a converter that did not raise."""
    assert batch.vectors.dtype == np.float32 and batch.vectors.ndim == 2


sizes = st.one_of(st.integers(0, 8), st.integers(0, 2**64), st.integers(-(2**63), 2**63))
float_bytes = st.binary(max_size=256)


@FUZZ
@given(data=float_bytes, rows=sizes, cols=sizes)
def test_float32_rows_returns_the_claimed_shape_or_refuses(data, rows, cols):
    try:
        x = float32_rows(data, rows, cols, "data")
    except EngineError:
        return
    assert x.shape == (rows, cols) and x.nbytes == len(data)


@FUZZ
@given(data=st.binary(max_size=2 * MAX_BYTES))
def test_safe_deserializer_never_raises(data):
    for message in (pb.ScoreRequest, oip.ModelInferRequest):
        decoded = safe_deserializer(message.FromString, MAX_BYTES)(data)
        if isinstance(decoded, Undecodable):
            assert isinstance(decoded.error, EngineError) and str(decoded.error)
        else:
            assert isinstance(decoded, message) and len(data) <= MAX_BYTES


def decoded_or_marker(message, data: bytes):
    return safe_deserializer(message.FromString, MAX_BYTES)(data)


our_requests = st.builds(
    pb.ScoreRequest,
    request_id=st.text(max_size=8),
    ids=st.lists(st.integers(0, 2**64 - 1), max_size=12),
    raw=st.builds(
        pb.RawVectors,
        data=float_bytes,
        rows=st.integers(0, 2**32 - 1),
        cols=st.integers(0, 2**32 - 1),
    ),
    include_feature_errors=st.booleans(),
) | st.builds(
    pb.ScoreRequest,
    ids=st.lists(st.integers(0, 2**64 - 1), max_size=12),
    floats=st.builds(
        pb.FloatVectors,
        values=st.lists(st.floats(width=32), max_size=40),
        cols=st.integers(0, 2**32 - 1),
    ),
)


@FUZZ
@given(request=our_requests)
def test_batch_from_request_returns_a_batch_or_an_engine_error(request):
    try:
        well_formed(batch_from_request(request))
    except EngineError:
        pass


@FUZZ
@given(data=st.binary(max_size=512))
def test_batch_from_request_on_random_bytes(data):
    try:
        well_formed(batch_from_request(decoded_or_marker(pb.ScoreRequest, data)))
    except EngineError:
        pass


def infer_requests():
    shapes = st.lists(st.one_of(st.integers(-4, 8), st.integers(-(2**63), 2**63 - 1)), max_size=4)
    names = st.sampled_from(["features", "input", ""])
    outputs = st.lists(
        st.sampled_from(
            ["score", "is_anomaly", "feature_errors", "severity", "expected", "missing"]
            + ["top_features", "top_feature_shares", "x"]
        ),
        max_size=9,
    )
    parameters = st.sampled_from(["threshold", "top_features", "other"])
    values = st.sampled_from(["bool_param", "int64_param", "string_param", "double_param"])

    @st.composite
    def build(draw):
        request = oip.ModelInferRequest(
            model_name=draw(st.sampled_from(["datasentinel", "other", ""])),
            model_version=draw(st.sampled_from(["", "tiny-1", "v9"])),
        )
        for _ in range(draw(st.integers(0, 2))):
            tensor = request.inputs.add(
                name=draw(names),
                datatype=draw(st.sampled_from(["FP32", "FP64", "BOOL", ""])),
                shape=draw(shapes),
            )
            tensor.contents.fp32_contents.extend(draw(st.lists(st.floats(width=32), max_size=12)))
        request.raw_input_contents.extend(draw(st.lists(float_bytes, max_size=2)))
        for name in draw(outputs):
            request.outputs.add(name=name)
        for name in draw(st.lists(parameters, max_size=2)):
            kind = draw(values)
            value = {"bool_param": True, "string_param": "x"}.get(kind) or draw(
                st.integers(-(2**63), 2**63 - 1)
                if kind == "int64_param"
                else st.floats(allow_nan=True, allow_infinity=True)
            )
            setattr(request.parameters[name], kind, value)
        return request

    return build()


@FUZZ
@given(request=infer_requests())
def test_batch_from_infer_request_returns_a_batch_or_an_engine_error(model, request):
    try:
        batch, outputs = batch_from_infer_request(request, model, "datasentinel")
    except EngineError:
        return
    well_formed(batch)
    assert len(outputs) == len(set(outputs)) <= 8


@FUZZ
@given(data=st.binary(max_size=512))
def test_batch_from_infer_request_on_random_bytes(model, data):
    try:
        well_formed(
            batch_from_infer_request(
                decoded_or_marker(oip.ModelInferRequest, data), model, "datasentinel"
            )[0]
        )
    except EngineError:
        pass
