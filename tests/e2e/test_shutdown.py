"""SIGTERM under load, several workers: calls in flight get their answers within the grace
period, new calls are refused with UNAVAILABLE (a client retries elsewhere or later)."""

import signal
import threading
import time

import grpc
import numpy as np

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


def request(dim, ids):
    x = np.zeros((len(ids), dim), dtype=np.float32)
    return pb.ScoreRequest(ids=ids, raw=pb.RawVectors(data=x.tobytes(), rows=len(ids), cols=dim))


def new_call(engine, dim) -> grpc.StatusCode:
    with engine.channel() as channel:
        try:
            pb_grpc.AnomalyScorerStub(channel).Score(request(dim, [0]), timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def refusals_after_stop(engine, dim, timeout=20.0) -> list[grpc.StatusCode]:
    """The statuses of new calls once the stop has begun: the first refused one, and three
    more made after it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = new_call(engine, dim)
        if code != grpc.StatusCode.OK:
            return [code] + [new_call(engine, dim) for _ in range(3)]
        time.sleep(0.05)
    raise AssertionError("new calls were still answered long after SIGTERM")


def test_sigterm_answers_the_stream_in_flight_and_refuses_new_calls(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--workers", "2", "--grace-seconds", "30")
    engine.wait_log("SERVING model", 2)  # a worker still starting when SIGTERM comes logs nothing
    dim, go_on = tiny_model.dim, threading.Event()

    def requests():
        yield request(dim, [0, 1, 2, 3])
        go_on.wait(30)  # the rest of the stream is sent after the stop has begun
        for i in range(1, 25):
            yield request(dim, [4 * i + k for k in range(4)])

    answered = []
    with engine.channel() as channel:
        replies = pb_grpc.AnomalyScorerStub(channel).ScoreStream(requests(), timeout=60)
        for reply in replies:
            assert reply.WhichOneof("outcome") == "result"
            answered.extend(reply.result.ids)
            if not go_on.is_set():
                engine.process.send_signal(signal.SIGTERM)
                first, *then = refusals_after_stop(engine, dim)
                # A call whose headers arrive just as grpc's shutdown starts is cancelled by grpc
                # core itself (CANCELLED); every later one finds no listener: UNAVAILABLE.
                assert first in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
                assert then == [grpc.StatusCode.UNAVAILABLE] * 3
                go_on.set()
    assert answered == list(range(100))
    assert engine.process.wait(30) == 0
    assert engine.log().count("SIGTERM received") == 2
