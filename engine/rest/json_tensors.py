"""The protocol's JSON (and binary-data extension) bodies <-> its protobuf messages, in pairs.

A JSON inference request becomes the same ``ModelInferRequest`` a gRPC client sends (values as
raw little-endian bytes), so both transports go through one set of checks
(engine/protocol/oip_converters.py) and give the same answers. The binary-data extension
(Triton's, used by ``tritonclient.http`` by default): the body is the JSON header of
``Inference-Header-Content-Length`` bytes, then each binary tensor's bytes in order, each input's
size in its ``binary_data_size`` parameter; outputs asked for with ``binary_data`` come back the
same way.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np
from google.protobuf import json_format

from datasentinel.engine.errors import InvalidInput
from datasentinel.engine.scoring.tensors import FLOAT32_LE
from datasentinel.oip import grpc_predict_v2_pb2 as oip

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_SIZE, BINARY_DATA, BINARY_OUTPUT = "binary_data_size", "binary_data", "binary_data_output"
_DTYPES = {"FP32": FLOAT32_LE, "BOOL": np.bool_}


def infer_request(
    body: bytes, header_length: int | None, model_name: str, version: str
) -> tuple[oip.ModelInferRequest, set[str], bool]:
    """The request, the outputs asked for as binary, and whether every output should be."""
    header, binary = _split(body, header_length)
    document = _json_object(header)
    request = oip.ModelInferRequest(
        model_name=model_name, model_version=version, id=str(document.get("id", ""))
    )
    _parameters(request.parameters, document.get("parameters"), skip=(BINARY_OUTPUT,))
    offset = 0
    for tensor in _list(document, "inputs"):
        offset = _add_input(request, tensor, binary, offset)
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset} bytes after the binary inputs: their binary_data_size "
            "parameters do not add up to the body"
        )
    binary_outputs = set()
    for wanted in _list(document, "outputs"):
        name = str(_field(wanted, "name", str))
        request.outputs.add(name=name)
        if (wanted.get("parameters") or {}).get(BINARY_DATA) is True:
            binary_outputs.add(name)
    everything = (document.get("parameters") or {}).get(BINARY_OUTPUT) is True
    return request, binary_outputs, everything


def infer_response(
    response: oip.ModelInferResponse, binary_outputs: set[str], everything: bool
) -> tuple[bytes, int | None]:
    """The body, and the JSON header's length when binary outputs follow it (else None)."""
    outputs, tail = [], []
    for tensor, raw in zip(response.outputs, response.raw_output_contents, strict=True):
        entry = {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}
        if everything or tensor.name in binary_outputs:
            entry["parameters"] = {BINARY_SIZE: len(raw)}
            tail.append(raw)
        else:
            entry["data"] = _values(tensor.datatype, raw)
        outputs.append(entry)
    document = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "parameters": parameters_json(response.parameters),
        "outputs": outputs,
    }
    header = json.dumps(document, separators=(",", ":")).encode()
    if not tail:
        return header, None
    return b"".join([header, *tail]), len(header)


def parameters_json(parameters) -> dict:
    return {key: getattr(value, value.WhichOneof("parameter_choice")) for key, value in
            parameters.items() if value.WhichOneof("parameter_choice")}  # fmt: skip


def message_json(message) -> dict:
    """A protobuf answer (metadata, config, statistics, index) as the protocol's JSON: field
    names as in the .proto, 64-bit integers as numbers (protobuf's JSON writes them as
    strings), InferParameter maps as plain values."""
    document = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=False
    )
    return _numbers(document)


# The 64-bit integer fields of the answers above (protobuf's JSON writes them as strings).
_INT64_FIELDS = frozenset(
    {"shape", "dims", "count", "ns", "inference_count", "execution_count", "last_inference",
     "batch_size", "max_queue_delay_microseconds", "int64_param", "uint64_param"}
)  # fmt: skip


def _numbers(value, key: str = ""):
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).endswith("_param"):
            return _numbers(*reversed(next(iter(value.items()))))
        return {name: _numbers(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item, key) for item in value]
    if key in _INT64_FIELDS and isinstance(value, str):
        return int(value)
    return value


def _split(body: bytes, header_length: int | None) -> tuple[bytes, memoryview]:
    if header_length is None:
        return body, memoryview(b"")
    if not 0 < header_length <= len(body):
        raise InvalidInput(
            f"{HEADER_LENGTH} {header_length} does not fit a body of {len(body)} bytes"
        )
    return body[:header_length], memoryview(body)[header_length:]


def _json_object(data: bytes) -> dict:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InvalidInput("the body must be a JSON object with 'inputs'")
    return document


def _list(document: dict, key: str) -> list[dict]:
    items = document.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidInput(f"'{key}' must be a list of objects")
    return items


def _field(tensor: dict, key: str, kind: type):
    value = tensor.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise InvalidInput(f"each tensor needs '{key}' ({kind.__name__}), got {value!r:.64}")
    return value


def _add_input(request: oip.ModelInferRequest, tensor: dict, binary: memoryview, offset: int):
    name, datatype = _field(tensor, "name", str), _field(tensor, "datatype", str)
    shape = _field(tensor, "shape", list)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise InvalidInput(f"input '{name[:64]}' shape {shape!r:.64} must be whole numbers >= 0")
    request.inputs.add(name=name, datatype=datatype, shape=shape)
    size = (tensor.get("parameters") or {}).get(BINARY_SIZE)
    if size is not None:
        if not isinstance(size, int) or not 0 <= size <= len(binary) - offset:
            raise InvalidInput(f"input '{name[:64]}' binary_data_size {size!r:.32} is out of range")
        request.raw_input_contents.append(bytes(binary[offset : offset + size]))
        return offset + size
    if datatype != "FP32":  # the checks after this one say what the model takes
        request.raw_input_contents.append(b"")
        return offset
    request.raw_input_contents.append(_fp32_bytes(name, tensor.get("data"), shape))
    return offset


def _fp32_bytes(name: str, data, shape: list[int]) -> bytes:
    try:
        values = np.asarray(data, dtype=FLOAT32_LE)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"input '{name[:64]}' data must be numbers, flat or nested row by row ({exc})"
        ) from None
    if values.size != math.prod(shape):
        raise InvalidInput(
            f"input '{name[:64]}' holds {values.size} values, shape {shape} needs "
            f"{math.prod(shape)}"
        )
    return values.tobytes()


def _parameters(target, given, skip: tuple[str, ...] = ()) -> None:
    if given is None:
        return
    if not isinstance(given, dict):
        raise InvalidInput("'parameters' must be an object")
    for key, value in given.items():
        if key in skip:
            continue
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            target[key].int64_param = value
        elif isinstance(value, float):
            target[key].double_param = value
        elif isinstance(value, str):
            target[key].string_param = value
        else:
            raise InvalidInput(f"parameter '{key[:64]}' must be a boolean, number or string")


def _values(datatype: str, raw: bytes) -> list:
    if datatype == "BYTES":
        return _bytes_elements(raw)
    return np.frombuffer(raw, _DTYPES[datatype]).tolist()


def _bytes_elements(raw: bytes) -> list[str]:
    """Triton's raw BYTES (4-byte little-endian length, then the bytes) as strings, flat."""
    elements, at = [], 0
    while at < len(raw):
        (length,) = struct.unpack_from("<I", raw, at)
        elements.append(raw[at + 4 : at + 4 + length].decode())
        at += 4 + length
    return elements
