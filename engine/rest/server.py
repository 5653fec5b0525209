"""Serves the REST app on the engine's event loop (aiohttp), beside grpc.aio: one scoring core,
one batcher, so REST and gRPC requests merge into the same model calls. With several workers
each binds the port with SO_REUSEPORT, as for gRPC.

aiohttp, not a second framework: it is an asyncio server (no thread or second loop to hand
requests across), long maintained, and has what is needed here (TLS contexts, a body size
limit, reuse_port, graceful shutdown) with no ASGI layer in between.
"""

from __future__ import annotations

import logging

from aiohttp import web

from datasentinel.engine.errors import BindError
from datasentinel.engine.protocol.call_admission import CallBudget
from datasentinel.engine.rest.app import build_app
from datasentinel.engine.rest.tls import ssl_context
from datasentinel.engine.scoring.core import ScoringCore
from datasentinel.engine.security.auth import token_file
from datasentinel.engine.settings import EngineSettings

log = logging.getLogger(__name__)


async def start_rest(
    settings: EngineSettings, core: ScoringCore, budget: CallBudget, reuse_port: bool = False
) -> web.AppRunner | None:
    """Starts serving (unless ENGINE_HTTP_PORT is -1); ``runner.cleanup()`` stops it."""
    if settings.http_port < 0:
        return None
    max_bytes = settings.max_message_mb * 1024 * 1024
    app = build_app(core, settings.oip_model_name, token_file(settings), budget, max_bytes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    tls = ssl_context(settings)
    host = settings.bind_host
    site = web.TCPSite(
        runner,
        host,
        settings.http_port,
        ssl_context=tls,
        reuse_port=reuse_port or None,
        shutdown_timeout=settings.grace_seconds,
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise BindError(
            f"cannot serve REST on {host}:{settings.http_port} ({exc.strerror}); choose another "
            "port with --http-port / ENGINE_HTTP_PORT (-1 turns it off)"
        ) from None
    port = runner.addresses[0][1]
    log.info("REST on %s://%s:%d/v2", "https" if tls else "http", host, port)
    return runner
