"""The Open Inference Protocol servicer called in-process over a scoring core on the tiny model
(the same calls through tritonclient and gRPC are in tests/e2e/test_open_inference_protocol.py)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from datasentinel import __version__
from datasentinel.engine.errors import InvalidInput
from datasentinel.engine.protocol.decoding import Undecodable
from datasentinel.engine.protocol.oip_servicer import InferenceServicer
from datasentinel.oip import grpc_predict_v2_pb2 as oip

NAME = "datasentinel"


class Aborted(Exception):
    pass


class Context:
    """What the servicer uses of grpc.aio.ServicerContext: abort, which ends the call, and a
    stream's write (kept in ``written``)."""

    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.written: list = []

    async def write(self, message) -> None:
        self.written.append(message)

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted


@pytest.fixture
def servicer(core):
    return InferenceServicer(core, NAME, stream_window=4)


def infer(x: np.ndarray, **fields) -> oip.ModelInferRequest:
    request = oip.ModelInferRequest(**{"model_name": NAME, **fields})
    request.inputs.add(name="features", datatype="FP32", shape=list(x.shape))
    request.raw_input_contents.append(x.astype("<f4").tobytes())
    return request


def rows(tiny_model, n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (tiny_model.mean + 3 * tiny_model.std * rng.normal(size=(n, tiny_model.dim))).astype(
        np.float32
    )


async def test_server_live_and_ready_follow_the_core(servicer, core):
    assert (await servicer.ServerLive(oip.ServerLiveRequest(), None)).live
    assert (await servicer.ServerReady(oip.ServerReadyRequest(), None)).ready
    await core.close()
    assert (await servicer.ServerLive(oip.ServerLiveRequest(), None)).live
    assert not (await servicer.ServerReady(oip.ServerReadyRequest(), None)).ready


async def test_model_ready_only_for_the_served_name_and_version(servicer, tiny_model):
    async def ready(name: str, version: str = "") -> bool:
        request = oip.ModelReadyRequest(name=name, version=version)
        return (await servicer.ModelReady(request, None)).ready

    assert await ready(NAME) and await ready(NAME, tiny_model.version)
    assert not await ready("other")
    assert not await ready(NAME, "v9")


async def test_server_metadata_names_the_engine(servicer):
    metadata = await servicer.ServerMetadata(oip.ServerMetadataRequest(), None)
    assert (metadata.name, metadata.version) == (NAME, __version__)


async def test_model_metadata_for_a_wrong_name_is_not_found(servicer, tiny_model):
    metadata = await servicer.ModelMetadata(oip.ModelMetadataRequest(name=NAME), Context())
    assert list(metadata.versions) == [tiny_model.version]
    context = Context()
    with pytest.raises(Aborted):
        await servicer.ModelMetadata(oip.ModelMetadataRequest(name="other"), context)
    assert context.code == grpc.StatusCode.NOT_FOUND and "unknown model 'other'" in context.details


async def test_model_infer_answers_the_cores_scores(servicer, tiny_model):
    x = rows(tiny_model)
    response = await servicer.ModelInfer(infer(x, id="r1"), Context())
    assert (response.id, response.model_name, response.model_version) == (
        "r1",
        NAME,
        tiny_model.version,
    )
    assert [o.name for o in response.outputs] == ["score", "is_anomaly"]
    scores = np.frombuffer(response.raw_output_contents[0], "<f4")
    np.testing.assert_allclose(scores, tiny_model.expected(x)[0], rtol=1e-5)
    flags = np.frombuffer(response.raw_output_contents[1], np.bool_)
    assert flags.tolist() == (scores > tiny_model.threshold).tolist()


async def test_model_infer_refuses_a_bad_request_with_its_status(servicer, tiny_model):
    for request, code in (
        (infer(rows(tiny_model), model_name="other"), grpc.StatusCode.NOT_FOUND),
        (infer(np.zeros((2, 3), np.float32)), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        context = Context()
        with pytest.raises(Aborted):
            await servicer.ModelInfer(request, context)
        assert context.code == code, context.details


async def test_model_infer_on_a_stopped_core_is_unavailable(servicer, core, tiny_model):
    await core.close()
    context = Context()
    with pytest.raises(Aborted):
        await servicer.ModelInfer(infer(rows(tiny_model)), context)
    assert context.code == grpc.StatusCode.UNAVAILABLE


async def test_a_stream_answers_each_request_in_order_and_errors_in_place(servicer, tiny_model):
    async def requests():
        yield infer(rows(tiny_model), id="a")
        yield infer(np.zeros((1, 3), np.float32), id="b")
        yield Undecodable(InvalidInput("not a valid ModelInferRequest"))
        yield infer(rows(tiny_model, 1), id="c")

    context = Context()
    await servicer.ModelStreamInfer(requests(), context)
    answers = context.written
    assert [(a.infer_response.id, bool(a.error_message)) for a in answers] == [
        ("a", False),
        ("b", True),
        ("", True),
        ("c", False),
    ]
    assert "not a valid ModelInferRequest" in answers[2].error_message
