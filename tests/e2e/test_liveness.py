"""Connection liveness: the engine reclaims connections that nobody uses."""

import threading

import grpc

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


def test_an_idle_connection_is_closed_by_the_engine(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "1", "--max-connection-idle-seconds", "0.5")
    states, went_idle = [], threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        states.append(state)
        if state == grpc.ChannelConnectivity.IDLE and grpc.ChannelConnectivity.READY in states:
            went_idle.set()

    with engine.channel() as channel:
        stub = pb_grpc.AnomalyScorerStub(channel)
        request = pb.ScoreRequest(
            ids=[0], raw=pb.RawVectors(data=bytes(4 * tiny_model.dim), rows=1, cols=tiny_model.dim)
        )
        assert stub.Score(request, timeout=10).model_version == tiny_model.version
        channel.subscribe(watch, try_to_connect=False)
        # The client never closes it: only the engine's max-idle GOAWAY moves it READY -> IDLE.
        assert went_idle.wait(20), f"connection still open, states seen: {states}"
        # A client that comes back simply reconnects.
        assert stub.Score(request, timeout=10).model_version == tiny_model.version
        channel.unsubscribe(watch)
