"""Open Inference Protocol (KServe v2) tensors <-> scoring-core batches, in pairs.

The model takes one FP32 input ``[N, D]`` and answers ``score`` FP32 ``[N]``, ``is_anomaly`` BOOL
``[N]`` and, when asked for by name, ``feature_errors`` FP32 ``[N, D]``, ``severity`` FP32 ``[N]``
and ``expected`` FP32 ``[N, D]`` (models that have them), ``missing`` BOOL ``[N, D]`` (values sent
as NaN, filled in by the model), ``top_features`` BYTES ``[N, k]`` (each row's k most
contributing feature names, most first) and ``top_feature_shares`` FP32 ``[N, k]`` (their shares
of the row's score). Request parameters: ``threshold`` (a number: this request's own decision
threshold) and ``top_features`` (an integer k, default 3 when an explanation output is asked for).
The response's ``threshold`` parameter is the threshold used. Responses always carry raw
little-endian bytes (``raw_output_contents``), as Triton's do; requests may use either form, not
both.
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from datasentinel import __version__
from datasentinel.engine.errors import InvalidInput, ModelNotFound
from datasentinel.engine.model.session import LoadedModel
from datasentinel.engine.protocol.decoding import Undecodable, check_decoded
from datasentinel.engine.scoring.core import ScoreBatch, ScoredBatch
from datasentinel.engine.scoring.tensors import FLOAT32_LE, float32_rows
from datasentinel.oip import grpc_predict_v2_pb2 as oip

SERVER_NAME = "datasentinel"
PLATFORM = "onnxruntime_onnx"
SCORE, IS_ANOMALY, FEATURE_ERRORS = "score", "is_anomaly", "feature_errors"
SEVERITY, EXPECTED, MISSING = "severity", "expected", "missing"
TOP_FEATURES, TOP_FEATURE_SHARES = "top_features", "top_feature_shares"
DEFAULT_OUTPUTS = (SCORE, IS_ANOMALY)
EXPLANATIONS = (TOP_FEATURES, TOP_FEATURE_SHARES)
DEFAULT_TOP_FEATURES = 3
THRESHOLD_PARAMETER, TOP_FEATURES_PARAMETER = "threshold", "top_features"


def check_model(name: str, version: str, model: LoadedModel, served_name: str) -> None:
    """Raises ModelNotFound unless ``name`` (and ``version``, when given) is what is served."""
    if name != served_name:
        raise ModelNotFound(f"unknown model '{name[:64]}': this engine serves '{served_name}'")
    if version and version != model.model_version:
        raise ModelNotFound(
            f"model '{name[:64]}' version '{version[:64]}' is not served "
            f"(serving version '{model.model_version}')"
        )


def batch_from_infer_request(
    request: oip.ModelInferRequest, model: LoadedModel, served_name: str
) -> tuple[ScoreBatch, list[str]]:
    """The vectors to score and the output names to return, in order."""
    check_decoded(request)
    check_model(request.model_name, request.model_version, model, served_name)
    outputs = _requested_outputs(request, model)
    vectors = _input_vectors(request, model)
    threshold = _number(request, THRESHOLD_PARAMETER, whole=False)
    top = _number(request, TOP_FEATURES_PARAMETER, whole=True)
    if top is None:
        explain = any(name in outputs for name in EXPLANATIONS)
        top = min(DEFAULT_TOP_FEATURES, model.input_dim) if explain else 0
    # The protocol has no per-row ids: results are positional, so row i answers input row i.
    batch = ScoreBatch(
        range(len(vectors)),
        vectors,
        FEATURE_ERRORS in outputs,
        threshold=threshold,
        top_features=top,
        want_expected=EXPECTED in outputs,
    )
    return batch, outputs


def infer_response(
    result: ScoredBatch, outputs: list[str], request_id: str, served_name: str
) -> oip.ModelInferResponse:
    response = oip.ModelInferResponse(
        model_name=served_name, model_version=result.model_version, id=request_id
    )
    response.parameters["threshold"].double_param = result.threshold
    response.parameters["execution_provider"].string_param = result.provider
    response.parameters["model_sha256"].string_param = result.model_sha256
    for name in outputs:
        datatype, array = _OUTPUTS[name](result)
        if datatype == "BYTES":
            data, shape = array
        else:
            array = array.astype(FLOAT32_LE, copy=False) if datatype == "FP32" else array
            data, shape = array.tobytes(), array.shape
        response.outputs.add(name=name, datatype=datatype, shape=shape)
        response.raw_output_contents.append(data)
    return response


def _severity(result: ScoredBatch) -> tuple[str, np.ndarray]:
    if result.severity is None:  # a model without a table swapped in since the request was read
        return "FP32", np.full(len(result.scores), np.nan, np.float32)
    return "FP32", result.severity


def _missing(result: ScoredBatch) -> tuple[str, np.ndarray]:
    if result.missing is None:
        return "BOOL", np.zeros((len(result.scores), len(result.feature_names)), np.bool_)
    return "BOOL", result.missing


def _top_names(result: ScoredBatch) -> tuple[str, tuple[bytes, list[int]]]:
    """Triton's raw BYTES: each element a 4-byte little-endian length, then its bytes."""
    if result.top_features is None:  # the request asked for top_features 0
        return "BYTES", (b"", [len(result.scores), 0])
    index = result.top_features.index
    table, used = _bytes_elements(tuple(result.feature_names))
    # Each name's elements padded to the longest, the padding masked out: one numpy pass.
    return "BYTES", (table[index][used[index]].tobytes(), list(index.shape))


def _top_shares(result: ScoredBatch) -> tuple[str, np.ndarray]:
    if result.top_features is None:
        return "FP32", np.zeros((len(result.scores), 0), np.float32)
    return "FP32", result.top_features.share


_OUTPUTS = {
    SCORE: lambda r: ("FP32", r.scores),
    IS_ANOMALY: lambda r: ("BOOL", r.is_anomaly.astype(np.bool_, copy=False)),
    FEATURE_ERRORS: lambda r: ("FP32", r.feature_errors),
    SEVERITY: _severity,
    EXPECTED: lambda r: ("FP32", r.expected),
    MISSING: _missing,
    TOP_FEATURES: _top_names,
    TOP_FEATURE_SHARES: _top_shares,
}


@functools.lru_cache(maxsize=8)
def _bytes_elements(feature_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's BYTES element (length, name) as a row of a uint8 table as wide as the
    longest, and the mask of its bytes."""
    elements = [struct.pack("<I", len(b)) + b for b in (name.encode() for name in feature_names)]
    width = max(len(element) for element in elements)
    table = np.zeros((len(elements), width), np.uint8)
    for row, element in enumerate(elements):
        table[row, : len(element)] = np.frombuffer(element, np.uint8)
    return table, np.arange(width) < np.array([len(e) for e in elements])[:, None]


def _available(model: LoadedModel) -> tuple[str, ...]:
    """The outputs this model can give: severity and expected need a version-3 model's."""
    names = [SCORE, IS_ANOMALY, FEATURE_ERRORS]
    names += [SEVERITY] if model.config.severity is not None else []
    names += [EXPECTED] if model.config.expected_output is not None else []
    return (*names, MISSING, TOP_FEATURES, TOP_FEATURE_SHARES)


def model_metadata(model: LoadedModel, served_name: str) -> oip.ModelMetadataResponse:
    tensor = oip.ModelMetadataResponse.TensorMetadata
    dim = model.input_dim
    shapes = {
        SCORE: ("FP32", [-1]),
        IS_ANOMALY: ("BOOL", [-1]),
        FEATURE_ERRORS: ("FP32", [-1, dim]),
        SEVERITY: ("FP32", [-1]),
        EXPECTED: ("FP32", [-1, dim]),
        MISSING: ("BOOL", [-1, dim]),
        TOP_FEATURES: ("BYTES", [-1, -1]),
        TOP_FEATURE_SHARES: ("FP32", [-1, -1]),
    }
    return oip.ModelMetadataResponse(
        name=served_name,
        versions=[model.model_version],
        platform=PLATFORM,
        inputs=[tensor(name=model.config.input_name, datatype="FP32", shape=[-1, dim])],
        outputs=[
            tensor(name=name, datatype=shapes[name][0], shape=shapes[name][1])
            for name in _available(model)
        ],
    )


def server_metadata() -> oip.ServerMetadataResponse:
    return oip.ServerMetadataResponse(name=SERVER_NAME, version=__version__, extensions=[])


def payload_bytes(request: oip.ModelInferRequest) -> int:
    """About how much memory the request's tensors hold (for a stream's read-ahead bound)."""
    if type(request) is Undecodable:
        return 0
    size = sum(len(raw) for raw in request.raw_input_contents)
    return size + sum(4 * len(t.contents.fp32_contents) for t in request.inputs)


def stream_error(request: oip.ModelInferRequest, message: str) -> oip.ModelStreamInferResponse:
    """Triton's form of a failed stream request: ``error_message`` set, the request id echoed."""
    if type(request) is Undecodable:
        request = oip.ModelInferRequest()
    echo = oip.ModelInferResponse(
        model_name=request.model_name, model_version=request.model_version, id=request.id
    )
    return oip.ModelStreamInferResponse(error_message=message, infer_response=echo)


def _requested_outputs(request: oip.ModelInferRequest, model: LoadedModel) -> list[str]:
    """Output names in order; each one the model has, none twice."""
    outputs = [o.name for o in request.outputs] or list(DEFAULT_OUTPUTS)
    known = _available(model)
    unknown = sorted(set(outputs) - set(known))
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        why = ""
        if {SEVERITY, EXPECTED} & set(unknown):
            why = (
                f" ('{SEVERITY}' and '{EXPECTED}' need a model trained with this version's "
                "trainer: retrain)"
            )
        raise InvalidInput(
            f"unknown outputs [{shown}{', ...' if len(unknown) > 5 else ''}]: this model has "
            + ", ".join(f"'{name}'" for name in known)
            + why
        )
    if len(set(outputs)) != len(outputs):
        raise InvalidInput(f"outputs {outputs} name one output twice: ask for each at most once")
    return outputs


def _number(request: oip.ModelInferRequest, name: str, whole: bool) -> float | int | None:
    """The request parameter ``name`` as a number (None when absent). ``whole``: an integer
    (int64_param or uint64_param); else also double_param."""
    if name not in request.parameters:
        return None
    parameter = request.parameters[name]
    kind = parameter.WhichOneof("parameter_choice")
    allowed = ("int64_param", "uint64_param") + (() if whole else ("double_param",))
    if kind not in allowed:
        raise InvalidInput(
            f"parameter '{name}' must be {'an integer' if whole else 'a number'} "
            f"({', '.join(allowed)}), got {kind or 'no value'}"
        )
    return getattr(parameter, kind)


def _input_vectors(request: oip.ModelInferRequest, model: LoadedModel) -> np.ndarray:
    name, dim = model.config.input_name, model.input_dim
    if len(request.inputs) != 1 or request.inputs[0].name != name:
        given = [t.name[:64] for t in request.inputs[:5]]
        more = f" and {len(request.inputs) - 5} more" if len(request.inputs) > 5 else ""
        raise InvalidInput(f"expected one input '{name}' (FP32 [N, {dim}]), got {given}{more}")
    tensor = request.inputs[0]
    if tensor.datatype != "FP32":
        got = tensor.datatype[:32] or "no datatype"
        raise InvalidInput(f"input '{name}' must be FP32, got {got}")
    if len(tensor.shape) != 2 or min(tensor.shape) < 0:
        shape = list(tensor.shape[:8]) + (["..."] if len(tensor.shape) > 8 else [])
        raise InvalidInput(f"input '{name}' shape {shape}: expected [N, {dim}]")
    rows, cols = tensor.shape
    if request.raw_input_contents and tensor.contents.ByteSize():
        raw = sum(len(data) for data in request.raw_input_contents)
        raise InvalidInput(
            f"input '{name}' has both raw_input_contents ({raw} bytes) and contents "
            f"({_contents_size(tensor.contents)}): which one holds the vectors is ambiguous; send "
            "them once, either as raw_input_contents (little-endian FP32 bytes, what tritonclient "
            "sends) or as contents.fp32_contents, not both"
        )
    if request.raw_input_contents:
        raw = request.raw_input_contents
        if len(raw) != 1:
            raise InvalidInput(f"raw_input_contents holds {len(raw)} tensors; the model takes 1")
        return float32_rows(raw[0], rows, cols, "raw_input_contents[0]")
    values = tensor.contents.fp32_contents
    if rows * cols == 0:
        raise InvalidInput(f"empty batch: input '{name}' has shape [{rows}, {cols}]")
    if len(values) != rows * cols:
        raise InvalidInput(f"input '{name}' holds {len(values)} values, shape needs {rows * cols}")
    return np.asarray(values, dtype=np.float32).reshape(rows, cols)


def _contents_size(contents: oip.InferTensorContents) -> str:
    """What ``contents`` holds, for a message: "8 fp32_contents values, 2 int_contents values"."""
    held = [(field.name, len(values)) for field, values in contents.ListFields()]
    return ", ".join(f"{count} {name} values" for name, count in held)
