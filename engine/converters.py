"""Protobuf <-> scoring-core conversions, in pairs, in one module."""

from __future__ import annotations

import numpy as np

from datasentinel.v1 import scoring_pb2 as pb
from engine.errors import InvalidInput
from engine.model import LoadedModel
from engine.scoring import Limits, ScoreBatch, ScoredBatch
from engine.tensors import FLOAT32_LE, float32_rows


def batch_from_request(request: pb.ScoreRequest) -> ScoreBatch:
    kind = request.WhichOneof("vectors")
    if kind == "raw":
        vectors = float32_rows(request.raw.data, request.raw.rows, request.raw.cols, "raw.data")
    elif kind == "floats":
        vectors = _vectors_from_floats(request.floats)
    else:
        raise InvalidInput("request has no vectors: set `raw` (float32 bytes) or `floats`")
    return ScoreBatch(request.ids, vectors, request.include_feature_errors)


def response_from_result(result: ScoredBatch, request_id: str) -> pb.ScoreResponse:
    response = pb.ScoreResponse(
        request_id=request_id, threshold=result.threshold, model_version=result.model_version
    )
    response.ids.extend(result.ids)
    response.scores.extend(result.scores.tolist())
    response.is_anomaly.extend(result.is_anomaly.tolist())
    if result.feature_errors is not None:
        response.feature_errors.CopyFrom(_raw_from_vectors(result.feature_errors))
    return response


def stream_result(response: pb.ScoreResponse) -> pb.ScoreStreamResponse:
    return pb.ScoreStreamResponse(request_id=response.request_id, result=response)


def stream_error(request: pb.ScoreRequest, code: int, message: str) -> pb.ScoreStreamResponse:
    error = pb.ScoreError(code=code, message=message)
    error.ids.extend(request.ids)
    return pb.ScoreStreamResponse(request_id=request.request_id, error=error)


def model_info(model: LoadedModel, limits: Limits) -> pb.ModelInfo:
    config = model.config
    return pb.ModelInfo(
        feature_names=config.feature_names,
        input_dim=config.input_dim,
        threshold=config.threshold,
        model_version=config.model_version,
        model_sha256=config.model_sha256,
        execution_provider=model.provider,
        max_batch_rows=limits.max_batch_rows,
        config_schema_version=config.schema_version,
    )


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
