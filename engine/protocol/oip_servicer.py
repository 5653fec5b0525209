"""The Open Inference Protocol (KServe v2) gRPC servicer, beside our own on the same port: it
converts, calls the same scoring core, converts back. Standard clients (tritonclient, kserve)
work with it unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from datasentinel.engine.errors import ModelNotFound
from datasentinel.engine.metrics.statistics import read_statistics
from datasentinel.engine.protocol import oip_converters as convert
from datasentinel.engine.protocol import oip_model_info as info
from datasentinel.engine.protocol.status import abort_on_error
from datasentinel.engine.protocol.streaming import answer_in_order, score_all
from datasentinel.engine.scoring.core import ScoreBatch, ScoringCore
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import grpc_predict_v2_pb2_grpc as oip_grpc


class InferenceServicer(oip_grpc.GRPCInferenceServiceServicer):
    def __init__(
        self, core: ScoringCore, model_name: str, stream_window: int, stream_buffer_bytes: int = 0
    ) -> None:
        self._core = core
        self._name = model_name
        self._window = stream_window
        self._buffer = stream_buffer_bytes

    async def ServerLive(self, request, context) -> oip.ServerLiveResponse:
        return oip.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context) -> oip.ServerReadyResponse:
        return oip.ServerReadyResponse(ready=self._core.ready)

    async def ModelReady(self, request, context) -> oip.ModelReadyResponse:
        try:
            convert.check_model(request.name, request.version, self._core.model, self._name)
        except ModelNotFound:
            return oip.ModelReadyResponse(ready=False)
        return oip.ModelReadyResponse(ready=self._core.ready)

    async def ServerMetadata(self, request, context) -> oip.ServerMetadataResponse:
        return convert.server_metadata()

    @abort_on_error
    async def ModelMetadata(self, request, context) -> oip.ModelMetadataResponse:
        convert.check_model(request.name, request.version, self._core.model, self._name)
        return info.model_metadata(self._core.model, self._name)

    @abort_on_error
    async def ModelConfig(self, request, context) -> oip.ModelConfigResponse:
        model = self._core.model
        convert.check_model(request.name, request.version, model, self._name)
        config = info.model_config(model, self._name, self._core.limits.max_batch_rows)
        return oip.ModelConfigResponse(config=config)

    @abort_on_error
    async def ModelStatistics(self, request, context) -> oip.ModelStatisticsResponse:
        model = self._core.model
        if request.name:  # empty: every model (Triton's convention)
            convert.check_model(request.name, request.version, model, self._name)
        return info.model_statistics(model, self._name, read_statistics())

    async def RepositoryIndex(self, request, context) -> oip.RepositoryIndexResponse:
        model, ready = self._core.model, self._core.ready
        return info.repository_index(model, self._name, ready, request.ready)

    @abort_on_error
    async def ModelInfer(self, request, context) -> oip.ModelInferResponse:
        return await self._infer(request)

    async def ModelStreamInfer(
        self, requests: AsyncIterator[oip.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> None:
        await answer_in_order(
            requests,
            self._answer_all,
            self._window,
            context.write,
            rpc="ModelStreamInfer",
            weigh=convert.payload_bytes,
            buffer_bytes=self._buffer,
        )

    async def _answer_all(
        self, requests: list[oip.ModelInferRequest]
    ) -> list[oip.ModelStreamInferResponse]:
        """Each request's answer, or its own ``error_message``; never ends the stream."""
        return await score_all(
            self._core, "ModelStreamInfer", requests, self._prepare, self._result, _error
        )

    async def _infer(self, request: oip.ModelInferRequest) -> oip.ModelInferResponse:
        batch, outputs = self._prepare(request)
        result = await self._core.score(batch)
        return convert.infer_response(result, outputs, request.id, self._name)

    def _prepare(self, request: oip.ModelInferRequest) -> tuple[ScoreBatch, list[str]]:
        return convert.batch_from_infer_request(request, self._core.model, self._name)

    def _result(self, request, outputs: list[str], result) -> oip.ModelStreamInferResponse:
        response = convert.infer_response(result, outputs, request.id, self._name)
        return oip.ModelStreamInferResponse(infer_response=response)


def _error(request, code, message: str) -> oip.ModelStreamInferResponse:
    return convert.stream_error(request, message)
