"""A small Python client for people who score from code.

    from datasentinel.client import Client

    with Client("localhost:9000") as client:
        for row in client.score([{"temperature": 71.2, "pressure": 3.1, ...}]):
            print(row.score, row.is_anomaly, row.severity, row.band, row.top_features)

Rows are a 2-D array (columns in the model's feature order, ``client.feature_names``), or a list
of dicts keyed by feature name (any order; other keys are kept on the result as ``keys``, and a
feature left out or ``None`` is missing: NaN, which a model trained by this version fills in).
TLS and the bearer token work as in the producer (``ca_file``, ``cert_file``/``key_file``,
``token_file``). Calls are unary ``Score`` requests of at most the engine's ``max_batch_rows``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

# The producer's channel code: TLS, mutual TLS, the token as call credentials or metadata.
from datasentinel.producer.channel.security import ClientSecurity, secure_channel
from datasentinel.severity import band
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 30.0


class ScoringError(Exception):
    """The engine refused or could not answer a call: ``code`` is the gRPC status name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Contribution:
    """One feature's part in a row's score."""

    name: str
    share: float  # of the row's score, 0..1
    value: float  # the value sent (NaN if missing)
    expected: float  # what the model expected, in the feature's units


@dataclass(frozen=True)
class RowResult:
    """One row's answer."""

    score: float
    is_anomaly: bool
    severity: float | None  # 0..1; None for models trained before severity existed
    threshold: float  # the threshold this row was judged against
    model_version: str
    top_features: list[Contribution] = field(default_factory=list)
    missing_features: list[str] = field(default_factory=list)
    keys: dict = field(default_factory=dict)  # the row's other fields (dict input only)

    @property
    def band(self) -> str | None:
        """'normal', 'warning', 'minor', 'major' or 'critical' (datasentinel.severity)."""
        return None if self.severity is None else band(self.severity)


class Client:
    """A connection to one engine (or a balanced target); use as a context manager or close()."""

    def __init__(
        self,
        target: str = "localhost:9000",
        *,
        ca_file: str | Path | None = None,
        cert_file: str | Path | None = None,
        key_file: str | Path | None = None,
        server_name: str | None = None,
        token_file: str | Path | None = None,
        tls: bool = False,
        timeout: float = CALL_TIMEOUT_S,
    ) -> None:
        security = ClientSecurity(
            tls=tls,
            ca_file=_path(ca_file),
            cert_file=_path(cert_file),
            key_file=_path(key_file),
            server_name=server_name,
            token_file=_path(token_file),
        )
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        self._channel = secure_channel(target, options, security)
        self._stub = pb_grpc.AnomalyScorerStub(self._channel)
        self._timeout = timeout
        self._info: pb.ModelInfo | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def model_info(self, refresh: bool = False) -> pb.ModelInfo:
        """The served model's description (feature names, threshold, version, ...)."""
        if self._info is None or refresh:
            self._info = self._call(self._stub.GetModelInfo, pb.GetModelInfoRequest())
        return self._info

    @property
    def feature_names(self) -> list[str]:
        return list(self.model_info().feature_names)

    def score(
        self,
        rows: np.ndarray | Sequence[Mapping[str, object]],
        *,
        threshold: float | None = None,
        top_features: int = 3,
    ) -> list[RowResult]:
        """One result per row, in order. ``threshold`` overrides the engine's for these rows;
        ``top_features`` is how many contributing features to explain per row (0: none)."""
        vectors, keys = self._vectors(rows)
        top = min(top_features, len(self.feature_names))
        step = max(1, self.model_info().max_batch_rows or len(vectors))
        results: list[RowResult] = []
        for start in range(0, len(vectors), step):
            chunk = vectors[start : start + step]
            request = _request(chunk, start, threshold, top)
            response = self._call(self._stub.Score, request)
            results += rows_from_response(response, keys[start : start + step])
        return results

    def _vectors(self, rows) -> tuple[np.ndarray, list[dict]]:
        names = self.feature_names
        if isinstance(rows, np.ndarray) or (len(rows) and not isinstance(rows[0], Mapping)):
            vectors = np.asarray(rows, dtype=np.float64)
            if vectors.ndim != 2 or vectors.shape[1] != len(names):
                raise ValueError(
                    f"rows have shape {vectors.shape}; the model takes [n, {len(names)}] "
                    f"with columns {', '.join(names)}"
                )
            return _as_float32(vectors), [{} for _ in range(len(vectors))]
        return vectors_from_dicts(rows, names)

    def _call(self, method, request):
        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise ScoringError(exc.code().name, exc.details() or "") from None


def vectors_from_dicts(
    rows: Iterable[Mapping[str, object]], names: list[str]
) -> tuple[np.ndarray, list[dict]]:
    """Dicts keyed by feature name -> ``[n, len(names)]`` float32 in the model's order (a feature
    absent or None is NaN), and each row's other fields."""
    wanted = set(names)
    vectors, keys = [], []
    for number, row in enumerate(rows):
        vector = []
        for name in names:
            value = row.get(name)
            try:
                vector.append(math.nan if value is None else float(value))
            except (TypeError, ValueError):
                raise ValueError(
                    f"row {number}: feature {name!r} is {value!r}, not a number"
                ) from None
        vectors.append(vector)
        keys.append({k: v for k, v in row.items() if k not in wanted})
    return _as_float32(np.asarray(vectors, dtype=np.float64).reshape(-1, len(names))), keys


def _request(vectors: np.ndarray, first_id: int, threshold, top: int) -> pb.ScoreRequest:
    rows, cols = vectors.shape
    request = pb.ScoreRequest(
        ids=range(first_id, first_id + rows),
        raw=pb.RawVectors(data=vectors.tobytes(), rows=rows, cols=cols),
        top_features=top,
    )
    if threshold is not None:
        request.threshold = threshold
    return request


def rows_from_response(response: pb.ScoreResponse, keys: list[dict]) -> list[RowResult]:
    """The response's columns as one RowResult per row."""
    n = len(response.scores)
    severity = list(response.severity) or [None] * n
    explanations = list(response.explanations) or [None] * n
    return [
        RowResult(
            score=float(response.scores[i]),
            is_anomaly=bool(response.is_anomaly[i]),
            severity=None if severity[i] is None else float(severity[i]),
            threshold=float(response.threshold),
            model_version=response.model_version,
            top_features=_contributions(explanations[i]),
            missing_features=[]
            if explanations[i] is None
            else list(explanations[i].missing_features),
            keys=keys[i] if i < len(keys) else {},
        )
        for i in range(n)
    ]


def _missing(explanation: pb.RowExplanation | None) -> list[str]:
    return [] if explanation is None else list(explanation.missing_features)


def _contributions(explanation: pb.RowExplanation | None) -> list[Contribution]:
    if explanation is None:
        return []
    return [
        Contribution(c.name, float(c.share), float(c.value), float(c.expected))
        for c in explanation.top_features
    ]


def _as_float32(values: np.ndarray) -> np.ndarray:
    """Little-endian float32, C-contiguous: what RawVectors carries. Values beyond float32 stay
    infinite, which the engine refuses by name."""
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(values, dtype="<f4")


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)
