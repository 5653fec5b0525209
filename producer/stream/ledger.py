"""Accounting for every row of a stream: each id sent must be answered exactly once.

The ledger knows no gRPC: the client hands it decoded answers, in stream order, and it matches
each to the oldest unanswered message *of that stream* (the contract promises one response per
request, in request order, per stream). When a stream breaks, its unanswered messages are handed
back (``end_stream``) and sent again on the next stream, as new sends of the same rows; rows
answered on an old stream are never sent again. Anything else the engine does is recorded as a
protocol violation: an id answered twice within an answer, an id that was not in the request, an
id of the request missing from its answer. An answer for a row already answered (a resent request
answered twice) is counted once and noted; if a different model answered it, that is a violation.
Rows that end without a result (error answer, broken stream, never sent) are FAILED with a reason.

Row ids are row indices (0..n_rows-1), so per-row state lives in flat arrays indexed by id: state,
score, flag, severity, the threshold used, the model that answered, and the top features' name
indices, shares, values and expected values ([rows, k] numpy arrays). Only the rows with missing
features carry a Python object (a tuple of name indices), so a million rows stay small.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

# At most this many violation descriptions are kept (all are counted).
MAX_VIOLATION_NOTES = 20


class RowState(IntEnum):
    UNSENT = 0  # not yet handed to the stream
    PENDING = 1  # queued or sent, not answered yet
    OK = 2  # answered with a result
    FAILED = 3  # answered with an error, answered wrongly, or never answered


@dataclass
class Message:
    """One send of a request on one stream, as the ledger tracks it. A resend is a new Message
    with the same ``seq``/``request_id``/``ids`` on a later stream, ``attempt`` one higher."""

    seq: int
    request_id: str
    ids: np.ndarray
    sent_at: float | None = None
    stream: int = 0
    attempt: int = 0
    queued_at: float = 0.0
    payload: object = None  # what the client sends again (its request); the ledger never reads it


@dataclass(frozen=True)
class Explanations:
    """``RowExplanation``s as columns: row i's j-th top feature is ``names[top[i, j]]`` with its
    share, value and expected value (-1 and NaN past the row's last one); ``missing[i]`` holds the
    indices into ``names`` of row i's missing features."""

    names: list[str]
    top: np.ndarray  # int32 [rows, k]
    share: np.ndarray  # float32 [rows, k]
    value: np.ndarray  # float32 [rows, k]
    expected: np.ndarray  # float32 [rows, k]
    missing: list[tuple[int, ...]]

    def __len__(self) -> int:
        return len(self.missing)

    def take(self, positions: np.ndarray) -> Explanations:
        """The rows at ``positions``, in that order."""
        p = np.asarray(positions, dtype=np.int64)
        missing = [self.missing[i] for i in p.tolist()]
        return Explanations(
            self.names, self.top[p], self.share[p], self.value[p], self.expected[p], missing
        )

    def top_feature(self, row: int) -> tuple[str, float, float, float] | None:
        """(name, share, value, expected) of row ``row``'s largest contribution, if any."""
        if not self.top.shape[1] or self.top[row, 0] < 0:
            return None
        j = int(self.top[row, 0])
        return (
            self.names[j],
            float(self.share[row, 0]),
            float(self.value[row, 0]),
            float(self.expected[row, 0]),
        )


_NO_SEVERITY = np.empty(0, dtype=np.float32)


@dataclass(frozen=True)
class Result:
    """A decoded ``ScoreResponse``: columns, element i of each belonging to one row. ``severity``
    is empty for models without it; ``explanations`` None when the answer has none."""

    request_id: str
    ids: np.ndarray
    scores: np.ndarray
    is_anomaly: np.ndarray
    threshold: float
    model_version: str
    severity: np.ndarray = field(default_factory=lambda: _NO_SEVERITY)
    explanations: Explanations | None = None


@dataclass(frozen=True)
class Error:
    """A decoded ``ScoreError``: the whole request failed."""

    request_id: str
    reason: str
    ids: np.ndarray
    retryable: bool = False  # a transient error (e.g. RESOURCE_EXHAUSTED): send the rows again


@dataclass(frozen=True)
class Outcome:
    """What one response meant for its message: which rows got a result, which failed and why."""

    message: Message | None
    ok_ids: np.ndarray
    scores: np.ndarray
    is_anomaly: np.ndarray
    threshold: float | None
    failed_ids: np.ndarray
    reason: str | None
    retry: bool = False  # a transient error answer: the message's rows wait to be sent again
    severity: np.ndarray | None = None  # per ok row (NaN when the model has none)
    explanations: Explanations | None = None  # per ok row, when the answer had them
    model_version: str | None = None  # the model that answered the ok rows


_NO_IDS = np.empty(0, dtype=np.uint64)


class Ledger:
    """Per-row state, scores and failure reasons; per-message latency. Thread-safe: the feeder,
    gRPC's request thread and the response reader all report to it."""

    def __init__(self, n_rows: int, clock=time.perf_counter, *, top_k: int = 0) -> None:
        """``top_k``: how many top features per row to keep (the request's ``top_features``)."""
        self.n_rows = n_rows
        self.state = np.zeros(n_rows, dtype=np.int8)
        self.scores = np.full(n_rows, np.nan, dtype=np.float32)
        self.is_anomaly = np.zeros(n_rows, dtype=bool)
        self.severity = np.full(n_rows, np.nan, dtype=np.float32)
        self.threshold_used = np.full(n_rows, np.nan, dtype=np.float32)
        self.top_k = top_k
        self.top = np.full((n_rows, top_k), -1, dtype=np.int32)  # index into feature_names
        self.top_share = np.full((n_rows, top_k), np.nan, dtype=np.float32)
        self.top_value = np.full((n_rows, top_k), np.nan, dtype=np.float32)
        self.top_expected = np.full((n_rows, top_k), np.nan, dtype=np.float32)
        self.missing: dict[int, tuple[int, ...]] = {}  # row: indices into feature_names
        self.feature_names: list[str] = []  # every name the explanations used
        self._feature_index: dict[str, int] = {}
        self.reason_index = np.full(n_rows, -1, dtype=np.int32)
        self.reasons: list[str] = []
        self._reason_index: dict[str, int] = {}
        self.violations: list[str] = []
        self.n_violations = 0
        self.duplicate_ids = 0  # ids repeated within one answer (violations)
        self.duplicate_answers = 0  # rows answered again after their first answer (counted once)
        self.conflicting_ids = 0  # rows answered again by a different model (violations)
        self.unexpected_ids = 0
        self.missing_ids = 0
        self.latencies: list[float] = []
        self.model_versions: Counter[str] = Counter()
        self.thresholds: set[float] = set()
        self.messages_sent = 0  # first sends only; resends are counted apart
        self.vectors_sent = 0
        self.resent_messages = 0
        self.resent_vectors = 0
        self.retried_answers = 0  # transient error answers whose rows were sent again
        self.messages_answered = 0
        self.first_sent_at: float | None = None
        self.last_answer_at: float | None = None
        self._clock = clock
        self._sent = np.zeros(n_rows, dtype=bool)  # taken by a stream at least once
        self._model = np.full(n_rows, -1, dtype=np.int32)  # index into _models: who answered
        self._models: dict[str, int] = {}
        self._streams: dict[int, deque[Message]] = {}  # unanswered messages of each stream
        self._lock = threading.Lock()

    # -- the stream reports here ------------------------------------------------------------

    def queue(
        self, seq: int, ids: np.ndarray, stream: int = 0, attempt: int = 0, payload: object = None
    ) -> Message:
        """Registers a request (its request_id is ``seq`` as text) on ``stream``, before it is
        handed to that stream; ``attempt`` > 0 marks a resend of rows not answered yet."""
        message = Message(seq, str(seq), ids, stream=stream, attempt=attempt, payload=payload)
        with self._lock:
            message.queued_at = self._clock()
            # Never back from OK/FAILED to PENDING: a resend must not undo an answer.
            self.state[ids] = np.maximum(self.state[ids], RowState.PENDING)
            self._streams.setdefault(stream, deque()).append(message)
        return message

    def mark_sent(self, message: Message) -> None:
        now = self._clock()
        with self._lock:
            message.sent_at = now
            self.first_sent_at = self.first_sent_at or now
            # Counted by row: a message queued on a stream that broke before gRPC took it was
            # never sent, so its next send is its first.
            first = int(np.count_nonzero(~self._sent[message.ids]))
            self._sent[message.ids] = True
            self.vectors_sent += first
            self.resent_vectors += len(message.ids) - first
            if first:
                self.messages_sent += 1
            else:
                self.resent_messages += 1

    def answer(self, answer: Result | Error | None, stream: int = 0) -> Outcome:
        """Applies the next response of ``stream`` (None: it held neither result nor error)."""
        now = self._clock()
        with self._lock:
            self.last_answer_at = now
            pending = self._streams.get(stream)
            message = pending.popleft() if pending else None
            if message is None:
                return self._unsolicited(answer)
            if answer is not None and answer.request_id != message.request_id:
                self._violate(
                    f"request {message.request_id}: answer echoes request_id "
                    f"{answer.request_id!r} (answers must come in request order)"
                )
            if isinstance(answer, Error) and answer.retryable:
                self.retried_answers += 1
                return Outcome(
                    message, _NO_IDS, _NO_SCORES, _NO_FLAGS, None, _NO_IDS, answer.reason, True
                )
            self.messages_answered += 1
            if message.sent_at is not None:
                self.latencies.append(now - message.sent_at)
            if answer is None:
                self._violate(f"request {message.request_id}: answer with neither result nor error")
                return self._fail_message(message, "answer with neither result nor error")
            if isinstance(answer, Error):
                return self._apply_error(message, answer)
            return self._apply_result(message, answer)

    def oldest_wait(self, stream: int) -> float | None:
        """Seconds the oldest unanswered message of ``stream`` has waited since it was handed
        to the stream; None when nothing is outstanding (the hang detector reads this)."""
        with self._lock:
            pending = self._streams.get(stream)
            return self._clock() - pending[0].queued_at if pending else None

    def outstanding(self, stream: int) -> int:
        with self._lock:
            return len(self._streams.get(stream, ()))

    def end_stream(self, stream: int, error: str | None) -> list[Message]:
        """``stream`` is over (its reader has stopped): returns its unanswered messages, oldest
        first, for the caller to send again or give up on. Their rows stay PENDING. An engine
        that ends a stream cleanly (``error`` None) with requests unanswered breaks the
        protocol: noted."""
        with self._lock:
            pending = list(self._streams.pop(stream, ()))
            if pending and error is None:
                self._violate(
                    f"the engine closed the stream with {len(pending)} request(s) unanswered"
                )
            return pending

    def fail(self, ids: np.ndarray, reason: str) -> None:
        """Fails the rows of ``ids`` not answered yet (the client gave up on them)."""
        with self._lock:
            self._fail(ids[self.state[ids] <= RowState.PENDING], reason)

    def fail_each(self, ids: np.ndarray, reasons: tuple[str, ...] | list[str]) -> None:
        """Fails each row of ``ids`` not answered yet with its own reason (rows not sent)."""
        with self._lock:
            for row, reason in zip(np.asarray(ids).tolist(), reasons, strict=True):
                if self.state[row] <= RowState.PENDING:
                    self._fail(np.array([row], dtype=np.int64), reason)

    def close(self, stream_error: str | None) -> None:
        """The run is over: every row not answered yet fails, with ``stream_error`` (why the
        last stream ended, or why the producer gave up)."""
        ended = f"stream ended: {stream_error}" if stream_error else "stream ended"
        for stream in list(self._streams):
            self.end_stream(stream, stream_error)
        with self._lock:
            unanswered = self.state <= RowState.PENDING
            sent = np.flatnonzero(unanswered & self._sent)
            if len(sent):
                self._fail(sent, f"no answer ({ended})")
            unsent = np.flatnonzero(unanswered & ~self._sent)
            if len(unsent):
                self._fail(unsent, f"not sent ({ended})")

    # -- what came of it --------------------------------------------------------------------

    def count(self, state: RowState) -> int:
        return int(np.count_nonzero(self.state == state))

    @property
    def model_names(self) -> list[str]:
        """Model versions by index (``model_index``), in the order they first answered."""
        return list(self._models)

    @property
    def model_index(self) -> np.ndarray:
        """Per row: the index in ``model_names`` of the model that answered it, -1 for none."""
        return self._model

    def reason_of(self, row: int) -> str:
        """Why row ``row`` failed ('' when it did not)."""
        index = int(self.reason_index[row])
        return self.reasons[index] if index >= 0 and self.state[row] == RowState.FAILED else ""

    def failures(self) -> list[tuple[str, int]]:
        """(reason, failed rows) for each reason, in the order the reasons first occurred."""
        failed = self.reason_index[self.state == RowState.FAILED]
        counts = np.bincount(failed, minlength=len(self.reasons))
        return [(r, int(n)) for r, n in zip(self.reasons, counts, strict=True) if n]

    # -- internals (called with the lock held) ----------------------------------------------

    def _apply_result(self, message: Message, result: Result) -> Outcome:
        n = len(result.ids)
        if len({n, len(result.scores), len(result.is_anomaly)}) != 1:
            self._violate(f"request {message.request_id}: result columns of different lengths")
            return self._fail_message(message, "malformed result (columns of different lengths)")
        severity, explanations = result.severity, result.explanations
        if len(severity) not in (0, n):
            self._violate(f"request {message.request_id}: {len(severity)} severities for {n} rows")
            severity = _NO_SEVERITY
        if explanations is not None and len(explanations) not in (0, n):
            self._violate(
                f"request {message.request_id}: {len(explanations)} explanations for {n} rows"
            )
            explanations = None
        if not len(severity):
            severity = np.full(n, np.nan, dtype=np.float32)
        if explanations is not None and not len(explanations):
            explanations = None
        self.thresholds.add(float(result.threshold))
        if np.array_equal(result.ids, message.ids):  # the normal case, vectorised
            ok, positions = result.ids, None
            repeated = missing = _NO_IDS
        else:
            ok, positions, repeated, missing = self._match_rows(message, result)
        fresh = self.state[ok] == RowState.PENDING
        if not fresh.all():
            self._answered_again(ok[~fresh], result.model_version)
            ok = ok[fresh]
            base = np.arange(n) if positions is None else positions
            positions = base[fresh]
        scores, flags = result.scores, result.is_anomaly
        if positions is not None:
            scores, flags, severity = scores[positions], flags[positions], severity[positions]
            explanations = None if explanations is None else explanations.take(positions)
        self.state[ok] = RowState.OK
        self.scores[ok] = scores
        self.is_anomaly[ok] = flags
        self.severity[ok] = severity
        self.threshold_used[ok] = result.threshold
        if explanations is not None:
            self._explain(ok, explanations)
        self._model[ok] = self._models.setdefault(result.model_version, len(self._models))
        self.model_versions[result.model_version] += len(ok)
        if len(repeated):
            self._fail(repeated, "answered more than once (engine protocol violation)")
        if len(missing):
            self._fail(missing, "missing from its request's answer (engine protocol violation)")
        failed = np.concatenate([repeated, missing])
        reason = "missing from or repeated in the answer" if len(failed) else None
        return Outcome(
            message,
            ok,
            scores,
            flags,
            float(result.threshold),
            failed,
            reason,
            severity=severity,
            explanations=explanations,
            model_version=result.model_version,
        )

    def _explain(self, ok: np.ndarray, explanations: Explanations) -> None:
        """Keeps the explanations of rows ``ok``: names as indices into ``feature_names``."""
        ids = {
            name: self._feature_index.setdefault(name, len(self._feature_index))
            for name in explanations.names
        }
        self.feature_names = list(self._feature_index)
        to_global = np.array([ids[name] for name in explanations.names] + [-1], dtype=np.int32)
        k = min(self.top_k, explanations.top.shape[1])
        if k:
            top = explanations.top[:, :k]
            self.top[ok, :k] = to_global[top]  # -1 (none) maps to the -1 at the end
            self.top_share[ok, :k] = explanations.share[:, :k]
            self.top_value[ok, :k] = explanations.value[:, :k]
            self.top_expected[ok, :k] = explanations.expected[:, :k]
        for row, names in zip(ok.tolist(), explanations.missing, strict=True):
            if names:
                self.missing[row] = tuple(int(to_global[j]) for j in names)

    def _match_rows(self, message: Message, result: Result):
        """Row by row: the first answer of each id of the request counts; a repeated id fails
        its row; an id not in the request and an id of the request not answered are noted."""
        expected = set(message.ids.tolist())
        seen: dict[int, int] = {}
        repeated: set[int] = set()
        for position, row_id in enumerate(result.ids.tolist()):
            if row_id not in expected:
                self.unexpected_ids += 1
                self._violate(f"request {message.request_id}: answer has id {row_id}, not sent")
            elif row_id in seen:
                self.duplicate_ids += 1
                repeated.add(row_id)
                self._violate(f"request {message.request_id}: id {row_id} answered more than once")
            else:
                seen[row_id] = position
        missing = [i for i in message.ids.tolist() if i not in seen]
        for row_id in missing:
            self.missing_ids += 1
            self._violate(f"request {message.request_id}: id {row_id} missing from its answer")
        good = [i for i in seen if i not in repeated]
        positions = np.array([seen[i] for i in good], dtype=np.int64)
        return (
            np.array(good, dtype=np.uint64),
            positions,
            np.array(sorted(repeated), dtype=np.uint64),
            np.array(missing, dtype=np.uint64),
        )

    def _answered_again(self, ids: np.ndarray, model_version: str) -> None:
        """Rows answered before (a resent request answered on two streams): the first answer
        stands and the repeat is counted; a repeat from another model is a violation, since the
        row then has two different results."""
        self.duplicate_answers += len(ids)
        model = self._models.get(model_version, -2)
        first = self._model[ids]
        mask = (first != model) & (first >= 0)  # -1: the first answer was an error
        if mask.any():
            names = {i: name for name, i in self._models.items()}
            self.conflicting_ids += int(mask.sum())
            for row_id, before in zip(ids[mask].tolist(), first[mask].tolist(), strict=True):
                self._violate(
                    f"id {row_id} answered by two models: {names[before]!r}, then "
                    f"{model_version!r} (the first answer is kept)"
                )

    def _apply_error(self, message: Message, error: Error) -> Outcome:
        if not np.array_equal(np.sort(error.ids), np.sort(message.ids)):
            self._violate(
                f"request {message.request_id}: error echoes {len(error.ids)} id(s) that differ "
                f"from the {len(message.ids)} sent"
            )
        return self._fail_message(message, error.reason)

    def _unsolicited(self, answer: Result | Error | None) -> Outcome:
        ids = _NO_IDS if answer is None else answer.ids
        self.unexpected_ids += len(ids)
        request_id = None if answer is None else answer.request_id
        self._violate(f"answer (request_id {request_id!r}) with no request outstanding")
        return Outcome(None, _NO_IDS, _NO_SCORES, _NO_FLAGS, None, _NO_IDS, None)

    def _fail_message(self, message: Message, reason: str) -> Outcome:
        """Fails the message's rows not answered yet (an error never undoes an earlier answer)."""
        ids = message.ids[self.state[message.ids] == RowState.PENDING]
        if len(ids) < len(message.ids):
            self.duplicate_answers += len(message.ids) - len(ids)
        self._fail(ids, reason)
        return Outcome(message, _NO_IDS, _NO_SCORES, _NO_FLAGS, None, ids, reason)

    def _fail(self, ids: np.ndarray, reason: str) -> None:
        index = self._reason_index.setdefault(reason, len(self.reasons))
        if index == len(self.reasons):
            self.reasons.append(reason)
        self.state[ids] = RowState.FAILED
        self.reason_index[ids] = index

    def _violate(self, note: str) -> None:
        self.n_violations += 1
        if len(self.violations) < MAX_VIOLATION_NOTES:
            self.violations.append(note)


_NO_SCORES = np.empty(0, dtype=np.float32)
_NO_FLAGS = np.empty(0, dtype=bool)
