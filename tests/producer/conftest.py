"""A tiny fake engine: a real gRPC server on 127.0.0.1:0 serving AnomalyScorer and health.

Its scorer is trivial and deterministic (score = mean of the squared features, or of the squared
features times 1, 2, 3, ... with ``weighted``, so that the score depends on the column order;
anomaly when above the threshold; severity = score / (1 + score)); it answers the request's
``threshold`` and ``top_features`` (the features with the largest terms, expected value 0), fills
in missing values (NaN) with 0 when ``accepts_missing``, refuses them otherwise, and can switch to
another model version after a number of answers (a hot reload). It can misbehave on demand: come
up NOT_SERVING, reject a request, shed one with RESOURCE_EXHAUSTED once, answer an id twice, drop
or invent an id, break the stream (every stream, or the first few, then recover), never answer,
answer slowly. It records what it received (per stream), what it answered, and the most requests
it ever held unanswered.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from datasentinel import synthetic
from datasentinel.producer.settings import ProducerSettings
from datasentinel.v1 import scoring_pb2, scoring_pb2_grpc

SERVICE = "datasentinel.v1.AnomalyScorer"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN_ID = 10**12
# About 3% of the default synthetic rows (seed 1) score above this with the fake scorer.
THRESHOLD = 11500.0


def fake_terms(vectors: np.ndarray, weighted: bool = False) -> np.ndarray:
    """Per-feature terms of the fake score: x^2, times 1, 2, 3, ... when ``weighted``."""
    terms = vectors.astype(np.float64) ** 2
    return terms * np.arange(1, vectors.shape[1] + 1) if weighted else terms


def fake_scores(vectors: np.ndarray, weighted: bool = False) -> np.ndarray:
    return fake_terms(vectors, weighted).mean(axis=1).astype(np.float32)


@dataclass
class FakeConfig:
    input_dim: int = 8
    feature_names: list[str] = field(default_factory=lambda: synthetic.feature_names(8))
    threshold: float = THRESHOLD
    model_version: str = "fake-1"
    max_batch_rows: int = 0  # 0: no limit
    serving_after: float | None = 0.0  # seconds NOT_SERVING before SERVING; None: never
    fail_requests: frozenset[int] = (
        frozenset()
    )  # request indices (stream order) answered with error
    duplicate_id_in: int | None = None  # this request's answer repeats its first row at the end
    unknown_id_in: int | None = None  # this request's answer has an extra row with UNKNOWN_ID
    drop_id_in: int | None = None  # this request's answer leaves out its last row
    break_after: int | None = None  # abort the stream (UNAVAILABLE) after answering this many
    break_streams: int | None = None  # only the first this many streams break; None: all
    break_code: str = "UNAVAILABLE"  # the status the stream breaks with
    never_answer: bool = False  # take the requests, report SERVING, never answer (a hung engine)
    shed: frozenset[str] = frozenset()  # request_ids answered RESOURCE_EXHAUSTED ...
    shed_times: int | None = 1  # ... this many times each (None: every time)
    delay: float = 0.0  # seconds before each answer
    weighted: bool = False  # the score weighs column j by j + 1: it depends on column order
    accepts_missing: bool = False  # fill in NaN with 0 (else a request holding NaN is refused)
    key_columns: list[str] = field(default_factory=list)
    severity: bool = True  # answer a severity per row (False: a model from before severity)
    reload_after: int | None = None  # after this many answers, serve reloaded_version ...
    reloaded_version: str = "fake-2"
    reloaded_threshold: float = THRESHOLD / 2  # ... with this threshold


class FakeEngine(scoring_pb2_grpc.AnomalyScorerServicer):
    unknown_id = UNKNOWN_ID  # for tests: conftest cannot be imported under --import-mode=importlib

    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.requests: list[scoring_pb2.ScoreRequest] = []
        self.streams: list[list[str]] = []  # request_ids received, per stream
        self.answered_ids: list[int] = []  # ids of every result sent back
        self._shed: Counter[str] = Counter()
        self.max_unanswered = 0
        self._received = 0
        self._answered = 0
        self._lock = threading.Lock()
        self.health = health.HealthServicer()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        scoring_pb2_grpc.add_AnomalyScorerServicer_to_server(self, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self._timer: threading.Timer | None = None

    def start(self) -> FakeEngine:
        serving_after = self.config.serving_after
        self._set_health(SERVING if serving_after == 0 else NOT_SERVING)
        if serving_after:
            self._timer = threading.Timer(serving_after, self._set_health, [SERVING])
            self._timer.start()
        self.server.start()
        return self

    def stop(self) -> None:
        if self._timer:
            self._timer.cancel()
        self.server.stop(grace=None).wait()

    @property
    def sent_ids(self) -> list[int]:
        return [i for r in self.requests for i in r.ids]

    def _set_health(self, status: int) -> None:
        for service in (SERVICE, ""):
            self.health.set(service, status)

    # -- AnomalyScorer ----------------------------------------------------------------------

    def _model(self) -> tuple[str, float]:
        """(version, threshold) of the model served now."""
        c = self.config
        if c.reload_after is not None and self._answered >= c.reload_after:
            return c.reloaded_version, c.reloaded_threshold
        return c.model_version, c.threshold

    def GetModelInfo(self, request, context):
        c = self.config
        version, threshold = self._model()
        return scoring_pb2.ModelInfo(
            feature_names=c.feature_names,
            input_dim=c.input_dim,
            threshold=threshold,
            model_version=version,
            max_batch_rows=c.max_batch_rows,
            accepts_missing=c.accepts_missing,
            key_columns=c.key_columns,
        )

    def ScoreStream(self, request_iterator, context):
        # Requests are read ahead on their own thread, as a real engine queues them, so the
        # number held unanswered shows how many the client let be in flight.
        inbox: queue.Queue = queue.Queue()
        with self._lock:
            stream = len(self.streams)
            self.streams.append([])
        pump = threading.Thread(target=self._pump, args=(request_iterator, inbox, stream))
        pump.daemon = True
        pump.start()
        c = self.config
        breaks = c.break_after is not None and (c.break_streams is None or stream < c.break_streams)
        index = 0
        while (request := inbox.get()) is not None:
            if breaks and index >= c.break_after:
                context.abort(grpc.StatusCode[c.break_code], "fake engine going away")
            if c.never_answer:
                continue  # keep reading, never answer: the stream ends when the client cancels
            time.sleep(c.delay)
            response = self._answer(index, request)
            with self._lock:
                self._answered += 1
                if response.WhichOneof("outcome") == "result":
                    self.answered_ids.extend(response.result.ids)
            yield response
            index += 1

    def _pump(self, request_iterator, inbox: queue.Queue, stream: int) -> None:
        try:
            for request in request_iterator:
                with self._lock:
                    self.requests.append(request)
                    self.streams[stream].append(request.request_id)
                    self._received += 1
                    self.max_unanswered = max(self.max_unanswered, self._received - self._answered)
                inbox.put(request)
        except grpc.RpcError:
            pass  # the stream was cancelled or broken
        finally:
            inbox.put(None)

    def _answer(self, index: int, request) -> scoring_pb2.ScoreStreamResponse:
        c = self.config
        ids = list(request.ids)
        raw = request.raw
        shed = c.shed_times is None or self._shed[request.request_id] < c.shed_times
        if request.request_id in c.shed and shed:
            self._shed[request.request_id] += 1
            error = scoring_pb2.ScoreError(code=8, message="fake engine overloaded", ids=ids)
            return scoring_pb2.ScoreStreamResponse(request_id=request.request_id, error=error)
        if index in c.fail_requests or raw.cols != c.input_dim:
            error = scoring_pb2.ScoreError(code=3, message=f"fake rejects request {index}", ids=ids)
            return scoring_pb2.ScoreStreamResponse(request_id=request.request_id, error=error)
        vectors = np.frombuffer(raw.data, dtype="<f4").reshape(raw.rows, raw.cols)
        missing = np.isnan(vectors)
        if np.isinf(vectors).any() or (missing.any() and not c.accepts_missing):
            message = "fake engine refuses Inf" + ("" if c.accepts_missing else " and NaN")
            error = scoring_pb2.ScoreError(code=3, message=message, ids=ids)
            return scoring_pb2.ScoreStreamResponse(request_id=request.request_id, error=error)
        filled = np.where(missing, 0.0, vectors)  # the fake's "expected" value is 0
        terms = fake_terms(filled, c.weighted)
        scores = fake_scores(filled, c.weighted).tolist()
        version, threshold = self._model()
        if request.HasField("threshold"):
            threshold = request.threshold
        explanations = []
        if request.top_features or missing.any():
            explanations = [
                self._explain(row, terms[i], missing[i], request.top_features)
                for i, row in enumerate(vectors)
            ]
        severity = [s / (1 + s) for s in scores] if c.severity else []
        if index == c.duplicate_id_in:
            ids, scores = ids + ids[:1], scores + scores[:1]
            severity, explanations = severity and severity + severity[:1], []
        if index == c.unknown_id_in:
            ids, scores = ids + [UNKNOWN_ID], scores + [0.0]
            severity, explanations = severity and severity + [0.0], []
        if index == c.drop_id_in:
            ids, scores = ids[:-1], scores[:-1]
            severity, explanations = severity[:-1], []
        result = scoring_pb2.ScoreResponse(
            request_id=request.request_id,
            ids=ids,
            scores=scores,
            is_anomaly=[s > threshold for s in scores],
            threshold=threshold,
            model_version=version,
            severity=severity,
            explanations=explanations,
        )
        return scoring_pb2.ScoreStreamResponse(request_id=request.request_id, result=result)

    def _explain(self, row, terms, missing, top: int) -> scoring_pb2.RowExplanation:
        names = self.config.feature_names
        total = terms.sum()
        order = np.argsort(-terms, kind="stable")[:top]
        return scoring_pb2.RowExplanation(
            top_features=[
                scoring_pb2.FeatureContribution(
                    name=names[j],
                    share=terms[j] / total if total else 0.0,
                    value=row[j],
                    expected=0.0,
                )
                for j in order.tolist()
            ],
            missing_features=[names[j] for j in np.flatnonzero(missing).tolist()],
        )


@pytest.fixture
def start_engine():
    """``start_engine(**FakeConfig fields) -> FakeEngine``, stopped after the test."""
    engines: list[FakeEngine] = []

    def start(**config) -> FakeEngine:
        engine = FakeEngine(FakeConfig(**config)).start()
        engines.append(engine)
        return engine

    yield start
    for engine in engines:
        engine.stop()


@pytest.fixture
def engine(start_engine) -> FakeEngine:
    return start_engine()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Settings come from the environment too: start every test from a clean one."""
    for name in list(os.environ):
        if name.startswith("PRODUCER_") or name in ("ENGINE_HOST", "ENGINE_PORT", "NO_COLOR"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings_for():
    """``settings_for(engine, **fields) -> ProducerSettings`` aimed at the fake engine; quiet
    and quick by default."""

    def make(engine: FakeEngine, **fields) -> ProducerSettings:
        values = dict(engine_host="127.0.0.1", engine_port=engine.port, show="none")
        values.update(ready_timeout=5, count=200, batch_size=64)
        return ProducerSettings(**(values | fields))

    return make


@pytest.fixture
def args_for():
    """``args_for(engine, *flags) -> argv`` for main(), aimed at the fake engine."""

    def make(engine: FakeEngine, *flags: str) -> list[str]:
        base = ["--engine-host", "127.0.0.1", "--engine-port", str(engine.port)]
        return base + ["--ready-timeout", "5", "--count", "200", *flags]

    return make


# -- messy tables: what a new user's scoring CSV looks like ---------------------------------------

SENSORS = ["temperature", "vibration", "pressure", "current"]  # the model's order


@dataclass
class MessyTable:
    """A CSV as text cells: ISO timestamps, text machine ids, the sensors in some order, numbers
    written in different ways, a label, extra columns; ``features[i]`` are row i's sensor values
    in the model's order (NaN where the cell is empty)."""

    header: list[str]
    rows: list[list[str]]
    features: np.ndarray

    def column(self, name: str) -> list[str]:
        j = self.header.index(name)
        return [row[j] for row in self.rows]

    def reordered(self, header: list[str]) -> MessyTable:
        """The same table with its columns in the order of ``header`` (a subset drops some)."""
        at = [self.header.index(name) for name in header]
        return MessyTable(header, [[row[j] for j in at] for row in self.rows], self.features)

    def shuffled(self, seed: int) -> MessyTable:
        order = list(np.random.default_rng(seed).permutation(len(self.header)))
        return self.reordered([self.header[j] for j in order])

    def with_cell(self, row: int, column: str, text: str) -> MessyTable:
        rows = [list(r) for r in self.rows]
        rows[row][self.header.index(column)] = text
        features = self.features.copy()
        if column in SENSORS:
            value = np.nan if text.strip() in ("", "NA", "nan") else float(text)
            with np.errstate(over="ignore"):
                features[row, SENSORS.index(column)] = value
        return MessyTable(self.header, rows, features)

    def text(self) -> str:
        lines = [self.header, *self.rows]
        return "".join(",".join(_quote(cell) for cell in line) + "\n" for line in lines)

    def write(self, path) -> object:
        path.write_text(self.text())
        return path


def _quote(cell: str) -> str:
    return f'"{cell}"' if "," in cell or '"' in cell else cell


def messy_table(rows: int = 30, seed: int = 0, empty: int = 3) -> MessyTable:
    """``rows`` rows: timestamp, machine_id, the sensors not in the model's order, a text
    ``site`` (some with a comma, quoted), a zero-padded ``shift``, a 0/1 ``label``; ``empty``
    sensor cells left empty or 'NA' (never in row 0)."""
    rng = np.random.default_rng(seed)
    features = np.round(rng.normal(10, 3, size=(rows, len(SENSORS))), 2).astype(np.float32)
    header = ["timestamp", "machine_id", "pressure", "temperature", "site", "current", "label"]
    header.insert(4, "vibration")
    header.append("shift")
    table_rows = []
    for i in range(rows):
        cells = {name: _number_text(features[i, j], i) for j, name in enumerate(SENSORS)}
        cells |= {
            "timestamp": f"2026-03-01T{i // 60:02d}:{i % 60:02d}:00Z",
            "machine_id": f"m-{i % 4:02d}",
            "site": "Lyon, hall B" if i % 5 == 0 else "Porto",
            "label": str(int(i % 7 == 3)),
            "shift": f"{i % 3:03d}",
        }
        table_rows.append([cells[name] for name in header])
    table = MessyTable(header, table_rows, features)
    spots = rng.choice(np.arange(len(SENSORS), rows * len(SENSORS)), size=empty, replace=False)
    for k, spot in enumerate(spots.tolist()):
        table = table.with_cell(
            spot // len(SENSORS), SENSORS[spot % len(SENSORS)], ["", "NA"][k % 2]
        )
    return table


def _number_text(value: float, i: int) -> str:
    """The value written as people write numbers: plain, with padding, in exponent form."""
    text = str(np.float32(value))
    return [text, f" {text}", f"{float(text):e}"][i % 3]


@pytest.fixture
def messy():
    """``messy(rows=30, seed=0, empty=3) -> MessyTable`` (see messy_table)."""
    return messy_table


@pytest.fixture
def table_engine(start_engine):
    """``table_engine(**FakeConfig fields)``: a fake engine whose model has the SENSORS as
    features, in SENSORS order, and scores depending on the column order (``weighted``)."""

    def start(**config) -> FakeEngine:
        values = dict(input_dim=len(SENSORS), feature_names=list(SENSORS), weighted=True)
        return start_engine(**(values | config))

    return start
