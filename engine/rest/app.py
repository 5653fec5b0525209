"""The REST routes of the Open Inference Protocol (KServe v2, with Triton's config, statistics
and repository extensions): each handler converts, asks the scoring core or the model's facts,
converts back. Health and readiness need no token, as on gRPC.

Readiness answers 200 for true and 400 for false, as the protocol says (a status code is the
boolean); errors are ``{"error": message}`` with the status of engine/protocol/status.py.
"""

from __future__ import annotations

import json
import time

from aiohttp import web

from datasentinel.engine.errors import ModelNotFound, TooLarge
from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.metrics.statistics import read_statistics
from datasentinel.engine.protocol import oip_converters as convert
from datasentinel.engine.protocol import oip_model_info as info
from datasentinel.engine.protocol.call_admission import CallBudget
from datasentinel.engine.protocol.status import failed, http_status
from datasentinel.engine.rest import json_tensors
from datasentinel.engine.rest.guard import OPEN, error, guard, rpc_name
from datasentinel.engine.scoring.core import ScoringCore
from datasentinel.engine.security.auth import TokenFile

JSON = "application/json"
MODEL = "/v2/models/{name}"
VERSIONED = "/v2/models/{name}/versions/{version}"


class Endpoints:
    def __init__(self, core: ScoringCore, served_name: str, max_bytes: int) -> None:
        self._core = core
        self._name = served_name
        self._max_bytes = max_bytes

    async def server_live(self, request: web.Request) -> web.Response:
        return _boolean(True)

    async def server_ready(self, request: web.Request) -> web.Response:
        return _boolean(self._core.ready)

    async def model_ready(self, request: web.Request) -> web.Response:
        try:
            self._check(request)
        except ModelNotFound:
            return _boolean(False)
        return _boolean(self._core.ready)

    async def server_metadata(self, request: web.Request) -> web.Response:
        metadata = json_tensors.message_json(convert.server_metadata())
        return _json({"extensions": [], **metadata})

    async def model_metadata(self, request: web.Request) -> web.Response:
        return await self._answer(request, self._metadata)

    async def model_config(self, request: web.Request) -> web.Response:
        return await self._answer(request, self._config)

    async def model_statistics(self, request: web.Request) -> web.Response:
        return await self._answer(request, self._statistics)

    async def repository_index(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            ready_only = json.loads(body).get("ready") is True if body.strip() else False
        except (ValueError, AttributeError):
            return error(400, 'the body must be a JSON object such as {"ready": true}, or empty')
        index = info.repository_index(self._core.model, self._name, self._core.ready, ready_only)
        return _json(json_tensors.message_json(index).get("models", []))

    async def model_infer(self, request: web.Request) -> web.Response:
        start = time.perf_counter()
        rpc = rpc_name(request)
        try:
            body, header_length = await self._infer(request)
        except Exception as exc:
            code, message = failed(rpc, exc, time.perf_counter() - start)
            return error(http_status(code, exc), message)
        metrics().observe_request(rpc, "OK", time.perf_counter() - start)
        if header_length is None:
            return web.Response(body=body, content_type=JSON)
        headers = {json_tensors.HEADER_LENGTH: str(header_length)}
        return web.Response(body=body, content_type="application/octet-stream", headers=headers)

    async def _infer(self, request: web.Request) -> tuple[bytes, int | None]:
        header = request.headers.get(json_tensors.HEADER_LENGTH)
        length = int(header) if header and header.isdigit() else None
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit
            raise TooLarge(
                f"the body exceeds the engine's limit of {self._max_bytes} bytes "
                "(ENGINE_MAX_MESSAGE_MB); send fewer vectors per message"
            ) from None
        name, version = request.match_info["name"], request.match_info.get("version", "")
        message, binary, everything = json_tensors.infer_request(body, length, name, version)
        batch, outputs = convert.batch_from_infer_request(message, self._core.model, self._name)
        result = await self._core.score(batch)
        response = convert.infer_response(result, outputs, message.id, self._name)
        return json_tensors.infer_response(response, binary, everything)

    async def _answer(self, request: web.Request, build) -> web.Response:
        try:
            self._check(request)
            return _json(build())
        except Exception as exc:
            code, message = failed(rpc_name(request), exc, 0.0)
            return error(http_status(code, exc), message)

    def _check(self, request: web.Request) -> None:
        name, version = request.match_info["name"], request.match_info.get("version", "")
        convert.check_model(name, version, self._core.model, self._name)

    def _metadata(self) -> dict:
        document = json_tensors.message_json(info.model_metadata(self._core.model, self._name))
        names = document.get("parameters", {}).get(info.FEATURE_NAMES)
        document["parameters"][info.FEATURE_NAMES] = json.loads(names)  # a list in JSON
        return document

    def _config(self) -> dict:
        limit = self._core.limits.max_batch_rows
        return json_tensors.message_json(info.model_config(self._core.model, self._name, limit))

    def _statistics(self) -> dict:
        stats = info.model_statistics(self._core.model, self._name, read_statistics())
        return json_tensors.message_json(stats)


def _boolean(value: bool) -> web.Response:
    return web.Response(status=200 if value else 400)


def _json(document) -> web.Response:
    return web.Response(text=json.dumps(document), content_type=JSON)


def _open(handler):
    """Marks a route as needing no token (health and readiness, as on gRPC)."""
    setattr(handler.__func__, OPEN, True)
    return handler


def build_app(
    core: ScoringCore,
    served_name: str,
    tokens: TokenFile | None,
    budget: CallBudget,
    max_bytes: int,
) -> web.Application:
    app = web.Application(middlewares=[guard(tokens, budget, max_bytes)], client_max_size=max_bytes)
    ep = Endpoints(core, served_name, max_bytes)
    routes = [
        web.get("/v2/health/live", _open(ep.server_live)),
        web.get("/v2/health/ready", _open(ep.server_ready)),
        web.get("/v2", ep.server_metadata),
        web.post("/v2/repository/index", ep.repository_index),
    ]
    for base in (MODEL, VERSIONED):
        routes += [
            web.get(base, ep.model_metadata),
            web.get(base + "/ready", _open(ep.model_ready)),
            web.get(base + "/config", ep.model_config),
            web.get(base + "/stats", ep.model_statistics),
            web.post(base + "/infer", ep.model_infer),
        ]
    app.add_routes(routes)
    return app
