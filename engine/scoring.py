"""The scoring core: validates batches, scores them through the batcher, decides anomalies.

Knows nothing of gRPC; a KServe v2 front or any other protocol can sit on it unchanged.

A score the model cannot compute is never "normal": when a model answers NaN or +-Inf for a row
(a finite but huge input, ~1.7e19 and up, overflows float32 in the squared error), that row is
reported with score +Inf and ``is_anomaly`` true, the most anomalous answer possible, whatever the
model; non-finite per-feature errors likewise become +Inf. Such rows are counted in the
``datasentinel_nonfinite_scores`` metric.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from datasentinel.engine.batcher import GreedyBatcher
from datasentinel.engine.errors import EngineError, InvalidInput, TooLarge
from datasentinel.engine.limits import RowAdmission
from datasentinel.engine.metrics import metrics
from datasentinel.engine.model import LoadedModel, ModelOutput


@dataclass(frozen=True)
class ScoreBatch:
    """Vectors to score, ``[rows, input_dim]`` float32, with one client id per row."""

    ids: Sequence[int]
    vectors: np.ndarray
    want_feature_errors: bool = False


@dataclass(frozen=True)
class ScoredBatch:
    """Results row by row, aligned with the batch's ids; all scored by one model."""

    ids: Sequence[int]
    scores: np.ndarray
    is_anomaly: np.ndarray
    threshold: float
    model_version: str
    feature_errors: np.ndarray | None
    model_sha256: str = ""
    provider: str = ""


@dataclass(frozen=True)
class Limits:
    max_batch_rows: int = 4096
    max_merge_rows: int = 8192
    max_queue: int = 1024
    inline_rows: int = 0
    # Vectors queued or being scored at once (see engine.limits); at least one full merge.
    max_inflight_rows: int = 131072


class ScoringCore:
    """Serves one loaded model through a greedy batcher."""

    def __init__(self, model: LoadedModel, limits: Limits = Limits()) -> None:
        self.model = model
        self.limits = limits
        # True from a successful warm-up until shutdown begins: what readiness probes report.
        self.ready = False
        self._admission = RowAdmission(
            max(limits.max_inflight_rows, limits.max_merge_rows, limits.max_batch_rows)
        )
        # The batcher asks for the current model on every run, so a later model swap needs no
        # batcher change and every result names the model that really scored it.
        self._batcher = GreedyBatcher(
            lambda vectors: self.model.run(vectors),
            max_rows=limits.max_merge_rows,
            max_queue=limits.max_queue,
            inline_rows=limits.inline_rows,
            on_batch=metrics().observe_batch,
        )

    async def start(self) -> None:
        """Starts the batcher and runs one probe through it and the model."""
        self._batcher.start()
        probe = ScoreBatch(ids=[0], vectors=np.zeros((1, self.model.input_dim), np.float32))
        self.validate(probe)
        # Not through _scored: the probe is no traffic, and the row, anomaly and score metrics
        # (whose ratio is the anomaly rate) must read zero until a client sends something.
        await self._batcher.submit(probe.vectors)
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        await self._batcher.close()

    async def score(self, batch: ScoreBatch) -> ScoredBatch:
        """Scores one batch now, or raises Overloaded at once when the engine is at capacity."""
        self.validate(batch)
        rows = len(batch.vectors)
        self._admission.admit(rows)
        try:
            out = await self._batcher.submit(batch.vectors)
        finally:
            self._admission.release(rows)
        (result,) = self._scored([batch], out)
        return result

    async def score_each(
        self, batches: Sequence[ScoreBatch | Exception]
    ) -> list[ScoredBatch | Exception]:
        """Scores several batches with as few model calls as ``max_merge_rows`` allows; a bad
        batch (or an Exception standing for one that could not be read) fails alone, in its
        own slot. For streams: one call per group of waiting messages, not one per message."""
        outcomes: list[ScoredBatch | Exception] = list(batches)
        valid: list[int] = []
        for slot, batch in enumerate(batches):
            if isinstance(batch, Exception):
                continue
            try:
                self.validate(batch)
                valid.append(slot)
            except EngineError as exc:
                outcomes[slot] = exc
        chunks = self._chunks(valid, [len(batches[slot].vectors) for slot in valid])
        await asyncio.gather(*(self._score_chunk(batches, chunk, outcomes) for chunk in chunks))
        return outcomes

    def _chunks(self, slots: list[int], rows: list[int]) -> list[list[int]]:
        """Consecutive slots, up to ``max_merge_rows`` rows per chunk (at least one slot)."""
        chunks: list[list[int]] = []
        total = self.limits.max_merge_rows
        for slot, n in zip(slots, rows, strict=True):
            if total + n > self.limits.max_merge_rows:
                chunks.append([])
                total = 0
            chunks[-1].append(slot)
            total += n
        return chunks

    async def _score_chunk(self, batches, slots: list[int], outcomes: list) -> None:
        parts = [batches[slot] for slot in slots]
        vectors = [part.vectors for part in parts]
        rows = sum(len(v) for v in vectors)
        await self._admission.acquire(rows)  # a stream waits for room rather than failing
        try:
            out = await self._batcher.submit(
                vectors[0] if len(parts) == 1 else np.concatenate(vectors)
            )
        except Exception as exc:  # e.g. overloaded, or shutting down: each of them is told
            for slot in slots:
                outcomes[slot] = exc
            return
        finally:
            self._admission.release(rows)
        for slot, result in zip(slots, self._scored(parts, out), strict=True):
            outcomes[slot] = result

    def _scored(self, batches: list[ScoreBatch], out: ModelOutput) -> list[ScoredBatch]:
        """Results per batch from one model output of all their rows, in order. Flags and
        metrics are computed once for the whole output: per batch they cost more than the
        model's share for single-vector messages."""
        scores = _most_anomalous_if_nonfinite(out.scores)
        if scores is not out.scores:
            metrics().nonfinite_scores.inc(int(np.count_nonzero(np.isposinf(scores))))
        flags = scores > out.threshold
        metrics().observe_scores(scores, flags, out.threshold)
        results, start = [], 0
        for batch in batches:
            stop = start + len(batch.vectors)
            errors = None
            if batch.want_feature_errors:
                errors = _most_anomalous_if_nonfinite(out.feature_errors[start:stop])
            results.append(
                ScoredBatch(
                    ids=batch.ids,
                    scores=scores[start:stop],
                    is_anomaly=flags[start:stop],
                    threshold=out.threshold,
                    model_version=out.model_version,
                    feature_errors=errors,
                    model_sha256=out.model_sha256,
                    provider=out.provider,
                )
            )
            start = stop
        return results

    def validate(self, batch: ScoreBatch) -> None:
        """Raises InvalidInput / TooLarge with a message that tells the client what to fix."""
        vectors, config = batch.vectors, self.model.config
        rows = vectors.shape[0]
        if rows == 0:
            raise InvalidInput("empty batch: send at least one vector")
        if rows > self.limits.max_batch_rows:
            raise TooLarge(
                f"batch of {rows} vectors exceeds the engine's maximum of "
                f"{self.limits.max_batch_rows} per request; split it into smaller requests"
            )
        if vectors.ndim != 2 or vectors.shape[1] != config.input_dim:
            width = vectors.shape[1] if vectors.ndim == 2 else "?"
            raise InvalidInput(
                f"vectors have {width} features but the model expects {config.input_dim} "
                f"({_names(config.feature_names)})"
            )
        if len(batch.ids) != rows:
            raise InvalidInput(f"{len(batch.ids)} ids for {rows} vectors: send one id per vector")
        _check_unique(batch.ids)
        finite = np.isfinite(vectors)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise InvalidInput(
                f"vector {row} (id {batch.ids[row]}) has a non-finite value "
                f"({vectors[row, col]}) in feature '{config.feature_names[col]}': "
                "NaN and Inf cannot be scored"
            )


def _most_anomalous_if_nonfinite(values: np.ndarray) -> np.ndarray:
    """``values`` with every NaN and +-Inf replaced by +Inf (a copy only when there are any): a
    model that cannot compute a score has met an input unlike anything it was trained on."""
    finite = np.isfinite(values)
    if finite.all():
        return values
    return np.where(finite, values, np.inf).astype(values.dtype, copy=False)


def _check_unique(ids: Sequence[int]) -> None:
    """Ids are how a client matches answers to vectors: two rows with one id cannot both be
    matched. Positional batches (a ``range``) are unique by construction."""
    if isinstance(ids, range) or len(ids) < 2:
        return
    try:  # ~40 ns per id, the cost of reading them out of the protobuf message
        values = np.fromiter(ids, dtype=np.uint64, count=len(ids))
    except (OverflowError, TypeError, ValueError):  # not uint64s (in-process callers)
        values = np.asarray(list(ids), dtype=object)
    if (values[1:] > values[:-1]).all():  # ascending: the usual case, no sort needed
        return
    values = np.sort(values)
    repeated = np.flatnonzero(values[1:] == values[:-1])
    if len(repeated):
        raise InvalidInput(
            f"id {values[repeated[0]]} appears more than once in one request: ids match "
            "answers to vectors, so each vector needs its own"
        )


def _names(names: list[str], shown: int = 4) -> str:
    head = ", ".join(names[:shown])
    return head + (f", ... {len(names) - shown} more" if len(names) > shown else "")
