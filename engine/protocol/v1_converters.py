"""Protobuf <-> scoring-core conversions, in pairs, in one module."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from datasentinel.engine.errors import InvalidInput
from datasentinel.engine.model.session import LoadedModel
from datasentinel.engine.protocol.decoding import Undecodable, check_decoded
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoredBatch, TopFeatures
from datasentinel.engine.scoring.tensors import FLOAT32_LE, float32_rows
from datasentinel.v1 import scoring_pb2 as pb

_NOTHING = pb.ScoreRequest()  # what an unreadable request echoes: no request_id, no ids


def batch_from_request(request: pb.ScoreRequest) -> ScoreBatch:
    check_decoded(request)
    kind = request.WhichOneof("vectors")
    if kind == "raw":
        vectors = float32_rows(request.raw.data, request.raw.rows, request.raw.cols, "raw.data")
    elif kind == "floats":
        vectors = _vectors_from_floats(request.floats)
    else:
        raise InvalidInput("request has no vectors: set `raw` (float32 bytes) or `floats`")
    return ScoreBatch(
        request.ids,
        vectors,
        request.include_feature_errors,
        threshold=request.threshold if request.HasField("threshold") else None,
        top_features=request.top_features,
    )


def response_from_result(result: ScoredBatch, request: pb.ScoreRequest) -> pb.ScoreResponse:
    """The answer to ``request``, whose rows ``result`` scored (same ids, same order)."""
    return pb.ScoreResponse.FromString(response_bytes(result, request))


def stream_result(result: ScoredBatch, request: pb.ScoreRequest) -> pb.ScoreStreamResponse:
    return pb.ScoreStreamResponse.FromString(stream_result_bytes(result, request))


def stream_result_bytes(result: ScoredBatch, request: pb.ScoreRequest) -> bytes:
    """``stream_result`` as the wire bytes the servicer sends (engine.protocol.decoding passes
    bytes on)."""
    body = response_bytes(result, request)
    head = pb.ScoreStreamResponse(request_id=request.request_id).SerializeToString()
    return head + _packed(_RESULT, body)  # a message field: key, length, bytes, as packed ones


def response_bytes(result: ScoredBatch, request: pb.ScoreRequest) -> bytes:
    """The answer as the wire bytes the servicer sends (engine.protocol.decoding passes bytes
    on): neither built field by field nor parsed and serialized again. At 1024 rows, filling the
    repeated fields from Python cost ~110 us per message, about a fifth of the engine's event-loop
    time; parsing the same values in C ~30 us; with three top features per row, parsing and
    serializing the explanations ~250 us. Packed repeated float and bool are the raw
    little-endian values on the wire, and ``request_id`` and ``ids`` have the same numbers and
    types in both messages (a test pins this), so the request's own serialized ids are the
    answer's. Severity is packed floats too, and explanations are written as wire bytes as well
    (~3x cheaper than building 1024 x k messages from Python). Protobuf reads fields in any
    order."""
    echo = pb.ScoreRequest()
    echo.CopyFrom(request)
    for name in _REQUEST_ONLY:
        echo.ClearField(name)
    flags = result.is_anomaly.astype(np.bool_, copy=False).view(np.uint8)
    severity = b""
    if result.severity is not None:
        severity = _packed(_SEVERITY, result.severity.astype(FLOAT32_LE, copy=False).tobytes())
    if result.feature_errors is None:
        scalars = _scalars(result.threshold, result.model_version)
    else:
        message = pb.ScoreResponse(threshold=result.threshold, model_version=result.model_version)
        message.feature_errors.CopyFrom(_raw_from_vectors(result.feature_errors))
        scalars = message.SerializeToString()
    return b"".join(
        (
            echo.SerializeToString(),
            _packed(_SCORES, result.scores.astype(FLOAT32_LE, copy=False).tobytes()),
            _packed(_FLAGS, flags.tobytes()),
            severity,
            _explanations(result),
            scalars,
        )
    )


def payload_bytes(request: pb.ScoreRequest) -> int:
    """About how much memory the request's vectors hold (for a stream's read-ahead bound)."""
    if type(request) is Undecodable:
        return 0
    return len(request.raw.data) + 4 * len(request.floats.values) + 8 * len(request.ids)


def stream_error(request: pb.ScoreRequest, code: int, message: str) -> pb.ScoreStreamResponse:
    if type(request) is Undecodable:
        request = _NOTHING
    error = pb.ScoreError(code=code, message=message)
    error.ids.extend(request.ids)
    return pb.ScoreStreamResponse(request_id=request.request_id, error=error)


def model_info(model: LoadedModel, limits: Limits) -> pb.ModelInfo:
    config = model.config
    return pb.ModelInfo(
        feature_names=config.feature_names,
        input_dim=config.input_dim,
        threshold=model.threshold,
        model_version=model.model_version,
        model_sha256=config.model_sha256,
        execution_provider=model.provider,
        max_batch_rows=limits.max_batch_rows,
        config_schema_version=config.schema_version,
        accepts_missing=config.accepts_missing,
        key_columns=config.key_columns,
    )


_SCORES = pb.ScoreResponse.DESCRIPTOR.fields_by_name["scores"].number
_FLAGS = pb.ScoreResponse.DESCRIPTOR.fields_by_name["is_anomaly"].number
_SEVERITY = pb.ScoreResponse.DESCRIPTOR.fields_by_name["severity"].number
_EXPLANATIONS = pb.ScoreResponse.DESCRIPTOR.fields_by_name["explanations"].number
_RESULT = pb.ScoreStreamResponse.DESCRIPTOR.fields_by_name["result"].number
# Request fields the response must not echo (the echo copies the request's wire bytes).
_REQUEST_ONLY = ("vectors", "include_feature_errors", "threshold", "top_features")
_ROW = pb.RowExplanation.DESCRIPTOR.fields_by_name
_CONTRIBUTION = pb.FeatureContribution.DESCRIPTOR.fields_by_name
# A FeatureContribution's three floats as wire bytes: (key, little-endian float32) each.
_FLOATS = np.dtype(
    [("k1", "u1"), ("share", "<f4"), ("k2", "u1"), ("value", "<f4"), ("k3", "u1"), ("exp", "<f4")]
)
_FIXED32 = 5


def _explanations(result: ScoredBatch) -> bytes:
    """``explanations`` as wire bytes: one RowExplanation per row when the request asked for top
    features or a row had missing features, else nothing. A few rows are joined in Python; more
    are laid out with numpy (1024 rows x 3 features: ~1 ms joined, ~0.22 ms with numpy)."""
    top, missing = result.top_features, result.missing
    if top is None and missing is None:
        return b""
    names = _wire_names(tuple(result.feature_names))
    if len(result.scores) <= _JOIN_ROWS:
        return _joined(len(result.scores), top, missing, names)
    return _masked(len(result.scores), top, missing, names)


_JOIN_ROWS = 16
assert _EXPLANATIONS << 3 | 2 < 0x80  # its key is one byte, as _masked writes it
_ROW_KEY = bytes([_EXPLANATIONS << 3 | 2])


def _floats(top: TopFeatures) -> np.ndarray:
    """Each contribution's share, value and expected value with their keys: ``[rows, k]`` of
    ``_FLOATS``, whose bytes are the wire bytes."""
    floats = np.empty(top.index.shape, _FLOATS)
    floats["k1"], floats["k2"], floats["k3"] = (
        _CONTRIBUTION[name].number << 3 | _FIXED32 for name in ("share", "value", "expected")
    )
    floats["share"], floats["value"], floats["exp"] = top.share, top.value, top.expected
    return floats


def _joined(rows: int, top, missing, names: _WireNames) -> bytes:
    parts: list[list[bytes]] = [[] for _ in range(rows)]
    if top is not None:
        k, size = top.index.shape[1], _FLOATS.itemsize
        raw = _floats(top).tobytes()
        for n, feature in enumerate(top.index.ravel().tolist()):
            parts[n // k].append(names.contribution[feature] + raw[n * size : (n + 1) * size])
    if missing is not None:
        for row, col in zip(*np.nonzero(missing), strict=True):
            parts[row].append(names.missing[col])
    out = []
    for row in parts:
        body = b"".join(row)
        out += (_ROW_KEY, _varint(len(body)), body)
    return b"".join(out)


def _masked(rows: int, top, missing, names: _WireNames) -> bytes:
    """The same bytes as ``_joined``, from numpy: each row laid out at a fixed width (its key
    and length; k contribution slots as wide as the longest; one slot per feature for missing
    names), a mask marking the bytes in use, and the masked bytes taken in order. The arrays
    stay small (~90 KB at 1024 rows x 3 features): a byte-by-byte gather index instead was
    ~0.7 MB of fresh pages per answer, whose page faults cost more than the work."""
    body = np.zeros(rows, np.int64)
    if top is not None:
        k = top.index.shape[1]
        body += names.contribution_length[top.index].sum(axis=1) + k * _FLOATS.itemsize
    if missing is not None:
        body += (names.missing_length * missing).sum(axis=1)
    if body.max() >= 1 << 21:  # a 4-byte varint: not worth a numpy path
        return _joined(rows, top, missing, names)
    head = np.empty((rows, 4), np.uint8)  # the key, then the body's length as a varint
    head[:, 0] = _ROW_KEY[0]
    head[:, 1] = (body & 0x7F) | np.where(body >= 1 << 7, 0x80, 0)
    head[:, 2] = (body >> 7 & 0x7F) | np.where(body >= 1 << 14, 0x80, 0)
    head[:, 3] = body >> 14
    blocks = [head]
    masks = [np.arange(4) < (2 + (body >= 1 << 7) + (body >= 1 << 14))[:, None]]
    if top is not None:
        width = names.contribution_table.shape[1]
        unit = np.empty((rows, k, width + _FLOATS.itemsize), np.uint8)
        used = np.empty(unit.shape, np.bool_)
        unit[:, :, :width] = names.contribution_table[top.index]
        used[:, :, :width] = names.contribution_mask[top.index]
        unit[:, :, width:] = _floats(top).view(np.uint8).reshape(rows, k, _FLOATS.itemsize)
        used[:, :, width:] = True
        blocks.append(unit.reshape(rows, -1))
        masks.append(used.reshape(rows, -1))
    if missing is not None:
        table = names.missing_table.ravel()
        blocks.append(np.broadcast_to(table, (rows, len(table))))
        masks.append((names.missing_mask & missing[:, :, None]).reshape(rows, -1))
    return np.hstack(blocks)[np.hstack(masks)].tobytes()


class _WireNames:
    """Per feature, the wire bytes that start its FeatureContribution inside a RowExplanation
    (key, length, and the name field) and its entry in missing_features; and both as tables
    padded to the longest, with masks of the bytes in use, for ``_masked``."""

    def __init__(self, feature_names: tuple[str, ...]) -> None:
        self.contribution, self.missing = [], []
        for name in feature_names:
            encoded = name.encode()
            field = _varint(_CONTRIBUTION["name"].number << 3 | 2) + _varint(len(encoded))
            field += encoded
            key = _varint(_ROW["top_features"].number << 3 | 2)
            self.contribution.append(key + _varint(len(field) + _FLOATS.itemsize) + field)
            key = _varint(_ROW["missing_features"].number << 3 | 2)
            self.missing.append(key + _varint(len(encoded)) + encoded)
        self.contribution_table, self.contribution_mask = _padded(self.contribution)
        self.missing_table, self.missing_mask = _padded(self.missing)
        self.contribution_length = np.array([len(b) for b in self.contribution], np.int64)
        self.missing_length = np.array([len(b) for b in self.missing], np.int64)


def _padded(pieces: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``pieces`` as rows of a uint8 table as wide as the longest, and the mask of their bytes."""
    width = max(len(piece) for piece in pieces)
    table = np.zeros((len(pieces), width), np.uint8)
    for row, piece in enumerate(pieces):
        table[row, : len(piece)] = np.frombuffer(piece, np.uint8)
    return table, np.arange(width) < np.array([len(piece) for piece in pieces])[:, None]


@functools.lru_cache(maxsize=8)
def _wire_names(feature_names: Sequence[str]) -> _WireNames:
    return _WireNames(tuple(feature_names))


@functools.lru_cache(maxsize=64)
def _scalars(threshold: float, model_version: str) -> bytes:
    """``threshold`` and ``model_version`` as wire bytes: the same for nearly every answer, and
    serializing them each time was ~1 us of a single-vector answer's ~8."""
    return pb.ScoreResponse(threshold=threshold, model_version=model_version).SerializeToString()


def _packed(field_number: int, values: bytes) -> bytes:
    """A packed repeated field in protobuf's wire format: key, byte length, the values."""
    return _varint(field_number << 3 | 2) + _varint(len(values)) + values


# One-byte varints (field keys, a few rows' lengths) looked up: a single-vector answer has 8.
_SMALL_VARINTS = tuple(bytes((n,)) for n in range(0x80))


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL_VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _raw_from_vectors(vectors: np.ndarray) -> pb.RawVectors:
    rows, cols = vectors.shape
    data = vectors.astype(FLOAT32_LE, copy=False).tobytes()
    return pb.RawVectors(data=data, rows=rows, cols=cols)


def _vectors_from_floats(floats: pb.FloatVectors) -> np.ndarray:
    if floats.cols == 0:
        raise InvalidInput("floats.cols must be the number of features per vector (> 0)")
    if len(floats.values) % floats.cols:
        raise InvalidInput(
            f"floats.values holds {len(floats.values)} numbers, not a multiple of "
            f"cols={floats.cols}"
        )
    return np.asarray(floats.values, dtype=np.float32).reshape(-1, floats.cols)
