"""The framework floor for benchmarks/serving.py: the same gRPC service and messages as the
engine (grpc.aio, raw-bytes requests, columnar responses) with no model behind it.

    python benchmarks/echo_server.py   (prints the port it chose)
"""

from __future__ import annotations

import asyncio

import grpc

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


class Echo(pb_grpc.AnomalyScorerServicer):
    """Answers each request with as many (zero) results as it had rows."""

    async def Score(self, request, context):
        return self._answer(request)

    async def ScoreStream(self, requests, context):
        async for request in requests:
            yield pb.ScoreStreamResponse(result=self._answer(request))

    @staticmethod
    def _answer(request: pb.ScoreRequest) -> pb.ScoreResponse:
        rows = request.raw.rows
        response = pb.ScoreResponse(model_version="echo")
        response.ids.extend(request.ids)
        response.scores.extend([0.0] * rows)
        response.is_anomaly.extend([False] * rows)
        return response


async def main() -> None:
    server = grpc.aio.server()
    pb_grpc.add_AnomalyScorerServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}\necho SERVING ", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main())
