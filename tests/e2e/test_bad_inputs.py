"""The bad-input storm: one real engine, malformed requests over both APIs (our AnomalyScorer and
the Open Inference Protocol), unary and inside one stream. Each gets its own status and the valid
request right after it still succeeds; huge finite values are flagged, never "normal"; past the
concurrent-call cap a call is refused at once and the engine serves again afterwards."""

from __future__ import annotations

import threading

import grpc
import numpy as np
import pytest

from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.v1 import scoring_pb2 as pb
from tests.conftest import build_tiny_model
from tests.engine.nan_model import build_layered_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

DIM, MAX_ROWS, MAX_MB = 4, 64, 1
SCORE = "/datasentinel.v1.AnomalyScorer/Score"
SCORE_STREAM = "/datasentinel.v1.AnomalyScorer/ScoreStream"
INFER = "/inference.GRPCInferenceService/ModelInfer"
INFER_STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
MODEL = "datasentinel"
BAD, TOO_BIG, NOT_FOUND = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
)


def raw(x: np.ndarray, rows: int | None = None, cols: int | None = None) -> pb.RawVectors:
    rows = x.shape[0] if rows is None else rows
    cols = x.shape[1] if cols is None else cols
    return pb.RawVectors(data=x.astype("<f4").tobytes(), rows=rows, cols=cols)


def ours(x: np.ndarray | None = None, ids=None, **fields) -> bytes:
    x = np.ones((2, DIM), np.float32) if x is None else x
    ids = list(range(len(x))) if ids is None else ids
    if "floats" not in fields:
        fields.setdefault("raw", raw(x))
    fields.setdefault("request_id", "bad")
    return pb.ScoreRequest(ids=ids, **fields).SerializeToString()


def infer(
    x: np.ndarray | None = None, shape=None, datatype="FP32", name="features", raws=None, **fields
) -> bytes:
    x = np.ones((2, DIM), np.float32) if x is None else x
    shape = list(x.shape) if shape is None else shape
    fields.setdefault("id", "bad")
    request = oip.ModelInferRequest(model_name=fields.pop("model_name", MODEL), **fields)
    request.inputs.add(name=name, datatype=datatype, shape=shape)
    request.raw_input_contents.extend([x.astype("<f4").tobytes()] if raws is None else raws)
    return request.SerializeToString()


def with_outputs(*names: str) -> bytes:
    request = oip.ModelInferRequest.FromString(infer())
    for name in names:
        request.outputs.add(name=name)
    return request.SerializeToString()


def fp32_contents(values, shape) -> bytes:
    request = oip.ModelInferRequest(model_name=MODEL, id="bad")
    tensor = request.inputs.add(name="features", datatype="FP32", shape=shape)
    tensor.contents.fp32_contents.extend(values)
    return request.SerializeToString()


def undecodable() -> bytes:
    return b"\xff\xff\xff\xff\x0f" + bytes(range(7))  # field number 0: never valid protobuf


NAN, INF = np.ones((2, DIM), np.float32), np.ones((2, DIM), np.float32)
NAN[1, 2], INF[0, 0] = np.nan, -np.inf
# Over the engine's size limit, under the transport's (2 MiB): refused for its size before it
# is even parsed (parsed, its wrong width would make it INVALID_ARGUMENT).
OVER_APP_LIMIT = np.ones((2, (MAX_MB << 20) // 8 + 100), np.float32)

# (name, rpc, serialized request, expected status): every case also runs inside a stream.
OUR_CASES = [
    ("wrong row length", ours(np.ones((2, 3), np.float32)), BAD),
    ("NaN value", ours(NAN), BAD),
    ("Inf value", ours(INF), BAD),
    ("no vectors", pb.ScoreRequest(ids=[1]).SerializeToString(), BAD),
    ("empty batch", ours(np.ones((0, DIM), np.float32)), BAD),
    ("rows over max_batch_rows", ours(np.ones((MAX_ROWS + 1, DIM), np.float32)), TOO_BIG),
    ("bytes vs shape", ours(raw=raw(np.ones((2, DIM)), rows=3)), BAD),
    ("huge claimed shape", ours(raw=raw(np.ones((2, DIM)), rows=2**32 - 1, cols=2**32 - 1)), BAD),
    ("truncated raw data", ours(raw=pb.RawVectors(data=b"\0" * 31, rows=2, cols=DIM)), BAD),
    ("floats not a multiple of cols", ours(floats=pb.FloatVectors(values=[1, 2, 3], cols=2)), BAD),
    ("floats cols 0", ours(floats=pb.FloatVectors(values=[1.0], cols=0)), BAD),
    ("ids vs rows", ours(ids=[1]), BAD),
    ("duplicate ids", ours(ids=[7, 7]), BAD),
    ("truncated message", ours()[:-5], BAD),
    ("undecodable bytes", undecodable(), BAD),
    ("over the message size limit", ours(OVER_APP_LIMIT), TOO_BIG),
]
OIP_CASES = [
    ("unknown model", infer(model_name="other"), NOT_FOUND),
    ("unknown version", infer(model_version="v999"), NOT_FOUND),
    ("wrong dtype", infer(datatype="FP64"), BAD),
    ("no dtype", infer(datatype=""), BAD),
    ("3-d shape", infer(shape=[1, 2, DIM]), BAD),
    ("huge shape [1, 2**62]", infer(shape=[1, 2**62]), BAD),
    ("huge shape [2**62, 4]", infer(shape=[2**62, DIM]), BAD),
    ("huge shape, fp32 contents", fp32_contents([1.0] * DIM, [2**62, DIM]), BAD),
    ("negative shape", infer(shape=[-2, DIM]), BAD),
    ("shape vs bytes", infer(shape=[3, DIM]), BAD),
    ("wrong width", infer(np.ones((2, DIM + 1), np.float32)), BAD),
    ("two raw tensors", infer(raws=[b"\0" * 32, b"\0" * 32]), BAD),
    ("wrong input name", infer(name="x"), BAD),
    ("no inputs", oip.ModelInferRequest(model_name=MODEL).SerializeToString(), BAD),
    ("unknown output", with_outputs("score", "nope"), BAD),
    ("duplicate outputs", with_outputs("score", "score"), BAD),
    ("too many outputs", with_outputs(*["score", "is_anomaly", "feature_errors"] * 4), BAD),
    ("NaN in fp32 contents", fp32_contents([1.0, float("nan"), 1.0, 1.0], [1, DIM]), BAD),
    ("empty batch", infer(np.ones((0, DIM), np.float32)), BAD),
    ("rows over max_batch_rows", infer(np.ones((MAX_ROWS + 1, DIM), np.float32)), TOO_BIG),
    ("truncated message", infer()[:-3], BAD),
    ("undecodable bytes", undecodable(), BAD),
    ("over the message size limit", infer(OVER_APP_LIMIT), TOO_BIG),
]
CASES = [(name, SCORE, body, code) for name, body, code in OUR_CASES] + [
    (name, INFER, body, code) for name, body, code in OIP_CASES
]
VALID = {SCORE: ours(np.zeros((3, DIM), np.float32)), INFER: infer(np.zeros((3, DIM)))}
STREAM_OF = {SCORE: SCORE_STREAM, INFER: INFER_STREAM}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """One engine for the whole storm, with small limits so the over-limit cases are cheap."""
    from tests.conftest import spawn_engine, wait_serving

    # Layered like a trained autoencoder: huge finite inputs make it score NaN.
    model = build_layered_model(tmp_path_factory.mktemp("storm") / "models", dim=DIM)
    process = spawn_engine(
        model.dir, "--max-batch-rows", str(MAX_ROWS), "--max-message-mb", str(MAX_MB)
    )
    assert process.port, process.log()
    wait_serving(process)
    yield process
    process.stop()


def call(channel: grpc.Channel, rpc: str, body: bytes) -> bytes:
    return channel.unary_unary(rpc)(body, timeout=10)


def test_the_storm_is_big_enough():
    assert len(CASES) >= 35


@pytest.mark.parametrize("name, rpc, body, code", CASES, ids=[f"{c[1][-5:]}:{c[0]}" for c in CASES])
def test_each_bad_unary_request_gets_its_status_and_the_next_valid_one_succeeds(
    engine, name, rpc, body, code
):
    with engine.channel() as channel:
        with pytest.raises(grpc.RpcError) as failed:
            call(channel, rpc, body)
        assert failed.value.code() == code, f"{name}: {failed.value.details()}"
        assert failed.value.details()  # a message a person can act on
        answer = call(channel, rpc, VALID[rpc])
    if rpc == SCORE:
        assert list(pb.ScoreResponse.FromString(answer).ids) == [0, 1, 2]
    else:
        assert oip.ModelInferResponse.FromString(answer).outputs[0].shape == [3]
    assert engine.process.poll() is None


def test_a_message_over_the_transport_limit_ends_only_its_call(engine):
    too_big = ours(np.ones((3 * (MAX_MB << 20) // 16, DIM), np.float32))  # ~3 MiB > 2 MiB
    with engine.channel() as channel:
        with pytest.raises(grpc.RpcError) as failed:
            call(channel, SCORE, too_big)
        assert failed.value.code() == TOO_BIG
        pb.ScoreResponse.FromString(call(channel, SCORE, VALID[SCORE]))


@pytest.mark.parametrize("rpc", [SCORE, INFER])
def test_bad_messages_inside_one_stream_are_answered_alone_and_the_stream_goes_on(engine, rpc):
    cases = [(name, body, code) for name, r, body, code in CASES if r == rpc]
    messages = []
    for _, body, _ in cases:
        messages += [body, VALID[rpc]]
    with engine.channel() as channel:
        answers = list(channel.stream_stream(STREAM_OF[rpc])(iter(messages), timeout=30))
    assert len(answers) == len(messages)
    for (name, _, code), bad, good in zip(cases, answers[::2], answers[1::2], strict=True):
        if rpc == SCORE:
            bad, good = (
                pb.ScoreStreamResponse.FromString(bad),
                pb.ScoreStreamResponse.FromString(good),
            )
            assert bad.WhichOneof("outcome") == "error", name
            assert bad.error.code == code.value[0], f"{name}: {bad.error.message}"
            assert list(good.result.ids) == [0, 1, 2], name
        else:
            bad, good = (
                oip.ModelStreamInferResponse.FromString(bad),
                oip.ModelStreamInferResponse.FromString(good),
            )
            assert bad.error_message, name
            assert not good.error_message and good.infer_response.outputs[0].shape == [3], name


def huge_finite_rows() -> np.ndarray:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 2**32, size=(5, DIM), dtype=np.uint32).view(np.float32)
    noise[~np.isfinite(noise)] = 1e30
    noise[np.abs(noise) < 1e20] = 3e38  # every row far outside what the model has seen
    x = np.concatenate([np.zeros((1, DIM)), noise, np.zeros((1, DIM))]).astype(np.float32)
    x[1, 0], x[2, :] = 1e20, 3e38
    return x


def test_huge_finite_values_are_flagged_on_all_four_rpcs(engine):
    x = huge_finite_rows()
    with engine.channel() as channel:
        unary = pb.ScoreResponse.FromString(call(channel, SCORE, ours(x)))
        (streamed,) = channel.stream_stream(SCORE_STREAM)(iter([ours(x)]), timeout=10)
        streamed = pb.ScoreStreamResponse.FromString(streamed).result
        infer_answer = oip.ModelInferResponse.FromString(call(channel, INFER, infer(x)))
        (infer_streamed,) = channel.stream_stream(INFER_STREAM)(iter([infer(x)]), timeout=10)
        infer_streamed = oip.ModelStreamInferResponse.FromString(infer_streamed).infer_response
    expected = [False] + [True] * (len(x) - 2) + [False]
    for answer in (unary, streamed):
        assert list(answer.is_anomaly) == expected
        assert np.isinf(answer.scores[1:-1]).all() and not np.isnan(answer.scores).any()
    for answer in (infer_answer, infer_streamed):
        outputs = {o.name: i for i, o in enumerate(answer.outputs)}
        scores = np.frombuffer(answer.raw_output_contents[outputs["score"]], "<f4")
        flags = np.frombuffer(answer.raw_output_contents[outputs["is_anomaly"]], np.bool_)
        assert flags.tolist() == expected and np.isinf(scores[1:-1]).all()


def test_past_the_concurrent_call_cap_a_call_is_refused_at_once_then_served_again(
    tmp_path, start_engine
):
    model = build_tiny_model(tmp_path / "models", dim=DIM)
    engine = start_engine(model.dir, "--max-concurrent-rpcs", "2")
    release = threading.Event()

    def held_open():
        yield VALID[SCORE]
        release.wait(30)

    with engine.channel() as channel:
        streams = [channel.stream_stream(SCORE_STREAM)(held_open(), timeout=30) for _ in range(2)]
        for stream in streams:
            next(stream)  # both streams are now open and answered
        with pytest.raises(grpc.RpcError) as refused:
            call(channel, SCORE, VALID[SCORE])
        assert refused.value.code() == TOO_BIG
        release.set()
        for stream in streams:
            assert list(stream) == []
        pb.ScoreResponse.FromString(call(channel, SCORE, VALID[SCORE]))
