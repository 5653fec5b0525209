"""The framework floor for benchmarks/serving.py: the same gRPC service and messages as the
engine (grpc.aio, raw-bytes requests, columnar responses built by the engine's own converter)
with no model, no validation, no batching and no metrics behind it.

    python benchmarks/echo_server.py   (prints the port it chose)
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from datasentinel.engine.protocol import v1_converters as converters
from datasentinel.engine.scoring.core import ScoredBatch
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


class Echo(pb_grpc.AnomalyScorerServicer):
    """Answers each request with as many (zero) results as it had rows."""

    async def Score(self, request, context):
        return converters.response_from_result(_zeros(request), request)

    async def ScoreStream(self, requests, context):
        async for request in requests:
            yield converters.stream_result(_zeros(request), request)


def _zeros(request: pb.ScoreRequest) -> ScoredBatch:
    rows = request.raw.rows
    return ScoredBatch(
        ids=request.ids,
        scores=np.zeros(rows, np.float32),
        is_anomaly=np.zeros(rows, bool),
        threshold=0.0,
        model_version="echo",
        feature_errors=None,
    )


async def main() -> None:
    server = grpc.aio.server()
    pb_grpc.add_AnomalyScorerServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}\necho SERVING ", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
