"""Open Inference Protocol (KServe v2) tensors <-> scoring-core batches, in pairs.

The model takes one FP32 input ``[N, D]`` and answers ``score`` FP32 ``[N]``, ``is_anomaly`` BOOL
``[N]`` and, when asked for by name, ``feature_errors`` FP32 ``[N, D]``. Responses always carry
raw little-endian bytes (``raw_output_contents``), as Triton's do; requests may use either form.
"""

from __future__ import annotations

import numpy as np

from datasentinel import __version__
from datasentinel.engine.errors import InvalidInput, ModelNotFound
from datasentinel.engine.model import LoadedModel
from datasentinel.engine.scoring import ScoreBatch, ScoredBatch
from datasentinel.engine.tensors import FLOAT32_LE, float32_rows
from datasentinel.engine.wire import Undecodable, check_decoded
from datasentinel.oip import grpc_predict_v2_pb2 as oip

SERVER_NAME = "datasentinel"
PLATFORM = "onnxruntime_onnx"
SCORE, IS_ANOMALY, FEATURE_ERRORS = "score", "is_anomaly", "feature_errors"
DEFAULT_OUTPUTS = (SCORE, IS_ANOMALY)


def check_model(name: str, version: str, model: LoadedModel, served_name: str) -> None:
    """Raises ModelNotFound unless ``name`` (and ``version``, when given) is what is served."""
    if name != served_name:
        raise ModelNotFound(f"unknown model '{name[:64]}': this engine serves '{served_name}'")
    if version and version != model.config.model_version:
        raise ModelNotFound(
            f"model '{name[:64]}' version '{version[:64]}' is not served "
            f"(serving version '{model.config.model_version}')"
        )


def batch_from_infer_request(
    request: oip.ModelInferRequest, model: LoadedModel, served_name: str
) -> tuple[ScoreBatch, list[str]]:
    """The vectors to score and the output names to return, in order."""
    check_decoded(request)
    check_model(request.model_name, request.model_version, model, served_name)
    outputs = _requested_outputs(request)
    vectors = _input_vectors(request, model)
    # The protocol has no per-row ids: results are positional, so row i answers input row i.
    batch = ScoreBatch(range(len(vectors)), vectors, FEATURE_ERRORS in outputs)
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
    tensors = {
        SCORE: ("FP32", result.scores.astype(FLOAT32_LE, copy=False)),
        IS_ANOMALY: ("BOOL", result.is_anomaly.astype(np.bool_, copy=False)),
        FEATURE_ERRORS: ("FP32", result.feature_errors),
    }
    for name in outputs:
        datatype, array = tensors[name]
        array = array.astype(FLOAT32_LE, copy=False) if datatype == "FP32" else array
        response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        response.raw_output_contents.append(array.tobytes())
    return response


def model_metadata(model: LoadedModel, served_name: str) -> oip.ModelMetadataResponse:
    tensor = oip.ModelMetadataResponse.TensorMetadata
    dim = model.input_dim
    return oip.ModelMetadataResponse(
        name=served_name,
        versions=[model.config.model_version],
        platform=PLATFORM,
        inputs=[tensor(name=model.config.input_name, datatype="FP32", shape=[-1, dim])],
        outputs=[
            tensor(name=SCORE, datatype="FP32", shape=[-1]),
            tensor(name=IS_ANOMALY, datatype="BOOL", shape=[-1]),
            tensor(name=FEATURE_ERRORS, datatype="FP32", shape=[-1, dim]),
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


def _requested_outputs(request: oip.ModelInferRequest) -> list[str]:
    """Output names in order; each known, none twice (so at most three)."""
    outputs = [o.name for o in request.outputs] or list(DEFAULT_OUTPUTS)
    known = (SCORE, IS_ANOMALY, FEATURE_ERRORS)
    unknown = sorted(set(outputs) - set(known))
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:5])
        raise InvalidInput(
            f"unknown outputs [{shown}{', ...' if len(unknown) > 5 else ''}]: this model has "
            f"'{SCORE}', '{IS_ANOMALY}', '{FEATURE_ERRORS}'"
        )
    if len(set(outputs)) != len(outputs):
        raise InvalidInput(f"outputs {outputs} name one output twice: ask for each at most once")
    return outputs


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
