"""Open Inference Protocol tensors <-> scoring-core batches, in-process (the gRPC paths are in
tests/e2e/test_open_inference_protocol.py, random requests in test_fuzz_converters.py)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from datasentinel.engine.errors import InvalidInput, ModelNotFound
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.protocol.decoding import Undecodable
from datasentinel.engine.protocol.oip_converters import (
    batch_from_infer_request,
    check_model,
    infer_response,
    model_metadata,
    payload_bytes,
    stream_error,
)
from datasentinel.engine.scoring.core import ScoredBatch, TopFeatures
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from tests.conftest import build_tiny_model

NAME = "datasentinel"
CPU = RuntimeOptions(providers=("CPUExecutionProvider",))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The tiny model (4 features f0..f3, version tiny-1, no severity or expected output)."""
    return load_model(build_tiny_model(tmp_path_factory.mktemp("oip") / "m").dir, CPU)


@pytest.fixture(scope="module")
def v3_model(tmp_path_factory):
    tiny = build_tiny_model(tmp_path_factory.mktemp("oip3") / "m", version="v3", v3_extras=True)
    return load_model(tiny.dir, CPU)


def infer(x: np.ndarray | None = None, raw: bool = True, outputs=(), **fields):
    """A request for ``x`` (2 rows of 4 by default), as raw bytes or fp32 contents."""
    x = np.arange(8, dtype=np.float32).reshape(2, 4) if x is None else x
    request = oip.ModelInferRequest(model_name=NAME, **fields)
    tensor = request.inputs.add(name="features", datatype="FP32", shape=list(x.shape))
    if raw:
        request.raw_input_contents.append(x.astype("<f4").tobytes())
    else:
        tensor.contents.fp32_contents.extend(x.ravel().tolist())
    for name in outputs:
        request.outputs.add(name=name)
    return request


def refused(request, model, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        batch_from_infer_request(request, model, NAME)


# --- Requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "fp32-contents"])
def test_raw_bytes_and_fp32_contents_give_the_same_rows(model, raw):
    x = np.arange(8, dtype=np.float32).reshape(2, 4) / 3
    batch, outputs = batch_from_infer_request(infer(x, raw=raw), model, NAME)
    np.testing.assert_array_equal(batch.vectors, x)
    assert list(batch.ids) == [0, 1]  # positional: row i answers input row i
    assert outputs == ["score", "is_anomaly"]  # the default outputs
    assert not batch.want_feature_errors and batch.top_features == 0 and batch.threshold is None


def test_the_requested_outputs_are_kept_in_order_and_set_the_batch(model):
    batch, outputs = batch_from_infer_request(
        infer(outputs=["top_features", "feature_errors", "score"]), model, NAME
    )
    assert outputs == ["top_features", "feature_errors", "score"]
    assert batch.want_feature_errors and batch.top_features == 3 and not batch.want_expected


def test_unknown_or_repeated_outputs_are_refused(model):
    refused(infer(outputs=["score", "nope"]), model, r"unknown outputs \['nope'\]")
    refused(infer(outputs=["score", "score"]), model, "name one output twice")


def test_severity_and_expected_of_an_older_model_say_to_retrain(model, v3_model):
    refused(infer(outputs=["severity"]), model, "retrain")
    batch, outputs = batch_from_infer_request(
        infer(outputs=["severity", "expected"]), v3_model, NAME
    )
    assert outputs == ["severity", "expected"] and batch.want_expected


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda r: setattr(r.inputs[0], "name", "x"), "expected one input 'features'"),
        (lambda r: r.inputs.add(name="features"), "expected one input 'features'"),
        (lambda r: setattr(r.inputs[0], "datatype", "FP64"), "must be FP32, got FP64"),
        (lambda r: r.inputs[0].shape.pop(), r"shape \[2\]: expected \[N, 4\]"),
        (lambda r: r.inputs[0].shape.__setitem__(0, -1), r"shape \[-1, 4\]"),
        (lambda r: r.inputs[0].shape.__setitem__(0, 3), "holds 32 bytes but rows=3"),
        (lambda r: r.raw_input_contents.append(b"\0" * 32), "holds 2 tensors; the model takes 1"),
    ],
    ids=["wrong-name", "two-inputs", "fp64", "one-dim", "negative", "short-raw", "two-raw"],
)
def test_an_input_that_does_not_fit_the_model_is_refused(model, change, match):
    request = infer()
    change(request)
    refused(request, model, match)


def test_fp32_contents_must_fill_the_shape(model):
    short = infer(raw=False)
    short.inputs[0].shape[0] = 3
    refused(short, model, "holds 8 values, shape needs 12")
    empty = infer(np.zeros((0, 4), np.float32), raw=False)
    refused(empty, model, "empty batch")


@pytest.mark.parametrize("field", ["fp32_contents", "fp64_contents", "int_contents"])
def test_raw_bytes_and_contents_together_are_refused_saying_what_to_send(model, field):
    """Neither is picked silently: the client must say which holds the vectors."""
    request = infer()
    getattr(request.inputs[0].contents, field).extend([0] * 8)
    refused(
        request,
        model,
        rf"both raw_input_contents \(32 bytes\) and contents \(8 {field} values\).*ambiguous.*"
        r"either as raw_input_contents .* or as contents.fp32_contents, not both",
    )


def test_threshold_and_top_features_parameters(model):
    request = infer(outputs=["top_features"])
    request.parameters["threshold"].double_param = 1.5
    request.parameters["top_features"].int64_param = 2
    batch, _ = batch_from_infer_request(request, model, NAME)
    assert (batch.threshold, batch.top_features) == (1.5, 2)
    whole = infer()
    whole.parameters["threshold"].uint64_param = 2
    assert batch_from_infer_request(whole, model, NAME)[0].threshold == 2


@pytest.mark.parametrize(
    "name, kind, value, match",
    [
        ("threshold", "string_param", "0.5", "'threshold' must be a number"),
        ("threshold", "bool_param", True, "'threshold' must be a number"),
        ("top_features", "double_param", 2.0, "'top_features' must be an integer"),
    ],
)
def test_a_parameter_of_the_wrong_kind_is_refused(model, name, kind, value, match):
    request = infer()
    setattr(request.parameters[name], kind, value)
    refused(request, model, match)


def test_the_default_top_features_is_at_most_the_models_features(tmp_path):
    two = load_model(build_tiny_model(tmp_path / "two", dim=2).dir, CPU)
    request = infer(np.zeros((1, 2), np.float32), outputs=["top_feature_shares"])
    assert batch_from_infer_request(request, two, NAME)[0].top_features == 2


def test_an_undecodable_request_raises_its_own_error(model):
    with pytest.raises(InvalidInput, match="not a valid"):
        batch_from_infer_request(Undecodable(InvalidInput("not a valid message")), model, NAME)


# --- Model name and version -----------------------------------------------------------------


def test_check_model_accepts_the_served_name_with_or_without_the_version(model):
    check_model(NAME, "", model, NAME)
    check_model(NAME, "tiny-1", model, NAME)
    with pytest.raises(ModelNotFound, match="unknown model 'other': this engine serves"):
        check_model("other", "", model, NAME)
    with pytest.raises(ModelNotFound, match="version 'v9' is not served"):
        check_model(NAME, "v9", model, NAME)


def test_a_request_for_another_model_is_not_found(model):
    with pytest.raises(ModelNotFound):
        batch_from_infer_request(infer(model_version="v9"), model, NAME)


# --- Responses ------------------------------------------------------------------------------


def scored(**fields) -> ScoredBatch:
    values = dict(
        ids=[0, 1],
        scores=np.array([0.25, 2.0], np.float32),
        is_anomaly=np.array([False, True]),
        threshold=0.5,
        model_version="tiny-1",
        feature_errors=np.arange(8, dtype=np.float32).reshape(2, 4),
        model_sha256="abc",
        provider="CPUExecutionProvider",
        feature_names=["f0", "f1", "long_name"],
    )
    return ScoredBatch(**{**values, **fields})


def tensors(response: oip.ModelInferResponse) -> dict[str, tuple[str, list[int], bytes]]:
    return {
        out.name: (out.datatype, list(out.shape), raw)
        for out, raw in zip(response.outputs, response.raw_output_contents, strict=True)
    }


def test_the_response_has_the_requested_tensors_in_order_as_raw_bytes():
    outputs = ["is_anomaly", "score", "feature_errors"]
    response = infer_response(scored(), outputs, "req-7", NAME)
    assert [o.name for o in response.outputs] == outputs
    assert (response.model_name, response.model_version, response.id) == (NAME, "tiny-1", "req-7")
    got = tensors(response)
    assert got["score"][:2] == ("FP32", [2])
    assert np.frombuffer(got["score"][2], "<f4").tolist() == [0.25, 2.0]
    assert got["is_anomaly"] == ("BOOL", [2], b"\x00\x01")
    assert got["feature_errors"][:2] == ("FP32", [2, 4])
    assert np.frombuffer(got["feature_errors"][2], "<f4").tolist() == list(range(8))


def test_the_response_parameters_say_threshold_provider_and_model():
    parameters = infer_response(scored(), ["score"], "", NAME).parameters
    assert parameters["threshold"].double_param == 0.5
    assert parameters["execution_provider"].string_param == "CPUExecutionProvider"
    assert parameters["model_sha256"].string_param == "abc"


def test_top_features_are_length_prefixed_bytes_elements_with_their_shares():
    top = TopFeatures(
        index=np.array([[2, 0], [1, 2]]),
        share=np.array([[0.75, 0.25], [0.5, 0.5]], np.float32),
        value=np.zeros((2, 2), np.float32),
        expected=np.zeros((2, 2), np.float32),
    )
    got = tensors(
        infer_response(scored(top_features=top), ["top_features", "top_feature_shares"], "", NAME)
    )
    datatype, shape, data = got["top_features"]
    assert (datatype, shape) == ("BYTES", [2, 2])
    names = [b"long_name", b"f0", b"f1", b"long_name"]
    assert data == b"".join(struct.pack("<I", len(n)) + n for n in names)
    assert got["top_feature_shares"][:2] == ("FP32", [2, 2])
    assert np.frombuffer(got["top_feature_shares"][2], "<f4").tolist() == [0.75, 0.25, 0.5, 0.5]


def test_without_top_features_or_missing_values_the_tensors_are_empty_or_false():
    got = tensors(
        infer_response(scored(), ["top_features", "top_feature_shares", "missing"], "", NAME)
    )
    assert got["top_features"] == ("BYTES", [2, 0], b"")
    assert got["top_feature_shares"] == ("FP32", [2, 0], b"")
    assert got["missing"] == ("BOOL", [2, 3], b"\x00" * 6)


def test_severity_of_a_model_without_a_table_is_nan():
    datatype, shape, data = tensors(infer_response(scored(), ["severity"], "", NAME))["severity"]
    assert (datatype, shape) == ("FP32", [2]) and np.isnan(np.frombuffer(data, "<f4")).all()


# --- Metadata and streams -------------------------------------------------------------------


def test_model_metadata_lists_the_input_and_the_outputs_the_model_has(model, v3_model):
    metadata = model_metadata(model, NAME)
    assert (metadata.name, list(metadata.versions)) == (NAME, ["tiny-1"])
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("features", "FP32", [-1, 4])
    ]
    outputs = {t.name: (t.datatype, list(t.shape)) for t in metadata.outputs}
    assert list(outputs) == [
        "score", "is_anomaly", "feature_errors", "missing", "top_features", "top_feature_shares",
    ]  # fmt: skip
    assert outputs["feature_errors"] == ("FP32", [-1, 4])
    assert outputs["top_features"] == ("BYTES", [-1, -1])
    v3 = [t.name for t in model_metadata(v3_model, NAME).outputs]
    assert "severity" in v3 and "expected" in v3


def test_payload_bytes_counts_raw_and_fp32_contents():
    assert payload_bytes(infer()) == 32
    assert payload_bytes(infer(raw=False)) == 32
    assert payload_bytes(Undecodable(InvalidInput("x"))) == 0


def test_a_stream_error_echoes_the_request():
    answer = stream_error(infer(id="r1", model_version="v"), "bad input")
    assert answer.error_message == "bad input"
    echo = answer.infer_response
    assert (echo.id, echo.model_name, echo.model_version) == ("r1", NAME, "v")
    assert stream_error(Undecodable(InvalidInput("x")), "m").infer_response.id == ""
