"""Request decoding that never fails a call, and responses sent as pre-built bytes (random bytes
are in test_fuzz_converters.py; here each outcome, and the wiring into a real grpc.aio server)."""

from __future__ import annotations

import grpc
import pytest

from datasentinel.engine.errors import InvalidInput, TooLarge
from datasentinel.engine.protocol.decoding import (
    Undecodable,
    check_decoded,
    passing_bytes,
    register,
    safe_deserializer,
)
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import grpc_predict_v2_pb2_grpc as oip_grpc

GARBAGE = b"\xff\xff\xff\xff"  # a field tag whose varint never ends
INFER = "/inference.GRPCInferenceService/ModelInfer"
STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"


def test_a_valid_message_is_decoded():
    message = oip.ModelInferRequest(model_name="m", id="7")
    decoded = safe_deserializer(oip.ModelInferRequest.FromString, 1024)(message.SerializeToString())
    assert decoded == message


def test_bytes_that_cannot_be_decoded_become_a_marker_naming_the_message():
    decoded = safe_deserializer(oip.ModelInferRequest.FromString, 1024)(GARBAGE)
    assert type(decoded) is Undecodable
    assert type(decoded.error) is InvalidInput
    assert "not a valid ModelInferRequest message" in str(decoded.error)


def test_a_message_over_the_limit_is_too_large_even_when_valid():
    data = oip.ModelInferRequest(id="x" * 100).SerializeToString()
    decode = safe_deserializer(oip.ModelInferRequest.FromString, len(data) - 1)
    decoded = decode(data)
    assert type(decoded) is Undecodable and type(decoded.error) is TooLarge
    assert f"{len(data)} bytes exceeds the engine's limit of {len(data) - 1}" in str(decoded.error)
    assert safe_deserializer(oip.ModelInferRequest.FromString, len(data))(data).id == "x" * 100


def test_check_decoded_raises_the_markers_error_and_passes_messages():
    error = InvalidInput("why")
    with pytest.raises(InvalidInput, match="why"):
        check_decoded(Undecodable(error))
    check_decoded(oip.ModelInferRequest())
    assert repr(Undecodable(error)) == "Undecodable(InvalidInput('why'))"


def test_passing_bytes_sends_bytes_as_they_are_and_serializes_messages():
    serialize = passing_bytes(oip.ModelInferResponse.SerializeToString)
    assert serialize(b"\x0a\x01m") == b"\x0a\x01m"
    assert serialize(b"not a message") == b"not a message"
    message = oip.ModelInferResponse(model_name="m", id="1")
    assert serialize(message) == message.SerializeToString()


# --- Registered on a real server -------------------------------------------------------------


class Echo(oip_grpc.GRPCInferenceServiceServicer):
    """Answers ModelInfer with pre-built bytes; the stream says what each request decoded to."""

    def __init__(self) -> None:
        self.unary_seen: list = []

    async def ModelInfer(self, request, context):
        self.unary_seen.append(request)
        return oip.ModelInferResponse(id=request.id, model_name="echo").SerializeToString()

    async def ModelStreamInfer(self, requests, context):
        async for request in requests:
            if type(request) is Undecodable:
                yield oip.ModelStreamInferResponse(error_message=str(request.error))
            else:
                yield oip.ModelStreamInferResponse(
                    infer_response=oip.ModelInferResponse(id=request.id)
                )


@pytest.fixture
async def served():
    servicer, server = Echo(), grpc.aio.server()
    register(oip_grpc.add_GRPCInferenceServiceServicer_to_server, servicer, server, max_bytes=64)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield servicer, channel
    await channel.close()
    await server.stop(None)


async def call(channel, data: bytes) -> bytes:
    return await channel.unary_unary(INFER)(data, timeout=10)


async def test_a_unary_call_gets_its_answer_sent_from_prebuilt_bytes(served):
    servicer, channel = served
    answer = oip.ModelInferResponse.FromString(
        await call(channel, oip.ModelInferRequest(id="a").SerializeToString())
    )
    assert (answer.id, answer.model_name) == ("a", "echo")
    assert [r.id for r in servicer.unary_seen] == ["a"]


@pytest.mark.parametrize(
    "data, code, words",
    [
        (GARBAGE, grpc.StatusCode.INVALID_ARGUMENT, "not a valid ModelInferRequest"),
        (
            oip.ModelInferRequest(id="x" * 100).SerializeToString(),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "exceeds the engine's limit of 64 bytes",
        ),
    ],
    ids=["undecodable", "too-large"],
)
async def test_a_unary_call_over_a_bad_message_is_refused_before_the_handler(
    served, data, code, words
):
    servicer, channel = served
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(channel, data)
    assert refused.value.code() == code and words in refused.value.details()
    assert servicer.unary_seen == []


async def test_a_stream_gets_the_marker_and_goes_on(served):
    _, channel = served
    stream = channel.stream_stream(STREAM)
    good = oip.ModelInferRequest(id="ok").SerializeToString()
    answers = [
        oip.ModelStreamInferResponse.FromString(a)
        async for a in stream(iter([good, GARBAGE, good]), timeout=10)
    ]
    assert [a.infer_response.id for a in answers] == ["ok", "", "ok"]
    assert "not a valid ModelInferRequest" in answers[1].error_message
