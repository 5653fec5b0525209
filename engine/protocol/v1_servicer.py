"""The gRPC servicer: converts, calls the scoring core, converts back. No logic of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from datasentinel.engine.protocol import v1_converters as converters
from datasentinel.engine.protocol.status import abort_on_error
from datasentinel.engine.protocol.streaming import answer_in_order, score_all
from datasentinel.engine.scoring.core import ScoreBatch, ScoredBatch, ScoringCore
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


class AnomalyScorerServicer(pb_grpc.AnomalyScorerServicer):
    def __init__(self, core: ScoringCore, stream_window: int, stream_buffer_bytes: int = 0):
        self._core = core
        self._window = stream_window
        self._buffer = stream_buffer_bytes

    @abort_on_error
    async def Score(self, request: pb.ScoreRequest, context: grpc.aio.ServicerContext):
        return await self._score(request)

    @abort_on_error
    async def GetModelInfo(self, request, context: grpc.aio.ServicerContext) -> pb.ModelInfo:
        return converters.model_info(self._core.model, self._core.limits)

    async def ScoreStream(
        self, requests: AsyncIterator[pb.ScoreRequest], context: grpc.aio.ServicerContext
    ) -> None:
        await answer_in_order(
            requests,
            self._answer_all,
            self._window,
            context.write,
            rpc="ScoreStream",
            weigh=converters.payload_bytes,
            buffer_bytes=self._buffer,
        )

    async def _answer_all(self, requests: list[pb.ScoreRequest]) -> list[pb.ScoreStreamResponse]:
        """Each stream request's answer: its results, or its own error; never ends the stream."""
        return await score_all(
            self._core, "ScoreStream", requests, _prepare, _stream_result, _stream_error
        )

    async def _score(self, request: pb.ScoreRequest) -> bytes:
        """The answer as its wire bytes (engine.protocol.decoding sends bytes as they are)."""
        result = await self._core.score(converters.batch_from_request(request))
        return converters.response_bytes(result, request)


def _prepare(request: pb.ScoreRequest) -> tuple[ScoreBatch, None]:
    return converters.batch_from_request(request), None


def _stream_result(request, _, result: ScoredBatch) -> bytes:
    return converters.stream_result_bytes(result, request)


def _stream_error(request, code: grpc.StatusCode, message: str) -> pb.ScoreStreamResponse:
    return converters.stream_error(request, code.value[0], message)
