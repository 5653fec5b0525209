"""Messages on the stream: a batch as a ``ScoreRequest``, a ``ScoreStreamResponse`` as plain arrays
(``Result`` or ``Error``, for the ledger), a gRPC error as one line."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np

from datasentinel.producer.inputs.sources import Batch
from datasentinel.producer.stream.ledger import Error, Explanations, Result
from datasentinel.producer.stream.retry import RETRYABLE_ANSWER_CODES
from datasentinel.v1 import scoring_pb2

_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@dataclass(frozen=True)
class RequestOptions:
    """What every request asks for besides scores: its own threshold (None: the engine's) and
    how many top contributing features to explain per row (0: none)."""

    threshold: float | None = None
    top_features: int = 0


def to_request(
    request_id: str, batch: Batch, options: RequestOptions | None = None
) -> scoring_pb2.ScoreRequest:
    """One batch as a request: raw little-endian float32 rows and one id per row."""
    vectors = np.ascontiguousarray(batch.vectors, dtype="<f4")
    rows, cols = vectors.shape
    raw = scoring_pb2.RawVectors(data=vectors.tobytes(), rows=rows, cols=cols)
    # ids as a list of Python ints: ~1.7x faster than extending from the numpy array (measured:
    # 42 us vs 71 us per 1024-row request).
    request = scoring_pb2.ScoreRequest(request_id=request_id, ids=batch.ids.tolist(), raw=raw)
    if options is not None:
        if options.threshold is not None:
            request.threshold = options.threshold
        request.top_features = options.top_features
    return request


def decode_explanations(explanations) -> Explanations | None:
    """``RowExplanation``s as columns (None when there are none)."""
    n = len(explanations)
    if not n:
        return None
    k = max(len(e.top_features) for e in explanations)
    names: dict[str, int] = {}
    top = np.full((n, k), -1, dtype=np.int32)
    share, value, expected = (np.full((n, k), np.nan, dtype=np.float32) for _ in range(3))
    missing: list[tuple[int, ...]] = []
    for i, e in enumerate(explanations):
        for j, c in enumerate(e.top_features):
            top[i, j] = names.setdefault(c.name, len(names))
            share[i, j], value[i, j], expected[i, j] = c.share, c.value, c.expected
        missing.append(tuple(names.setdefault(m, len(names)) for m in e.missing_features))
    return Explanations(list(names), top, share, value, expected, missing)


def from_response(response: scoring_pb2.ScoreStreamResponse) -> Result | Error | None:
    """One stream answer as plain arrays (None when it holds neither a result nor an error)."""
    outcome = response.WhichOneof("outcome")
    if outcome == "result":
        r = response.result
        return Result(
            request_id=response.request_id,
            ids=np.array(r.ids, dtype=np.uint64),
            scores=np.array(r.scores, dtype=np.float32),
            is_anomaly=np.array(r.is_anomaly, dtype=bool),
            threshold=r.threshold,
            model_version=r.model_version,
            severity=np.array(r.severity, dtype=np.float32),
            explanations=decode_explanations(r.explanations),
        )
    if outcome == "error":
        e = response.error
        code = _STATUS_NAMES.get(e.code, f"code {e.code}")
        ids = np.array(e.ids, dtype=np.uint64)
        retryable = code in RETRYABLE_ANSWER_CODES
        reason = f"{code}: {e.message}"
        return Error(request_id=response.request_id, reason=reason, ids=ids, retryable=retryable)
    return None


def describe_rpc_error(error: grpc.RpcError) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return f"{code.name if code else 'UNKNOWN'}: {details}"
