"""Our protobuf <-> scoring-core conversions, in particular the wire-level response builder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from datasentinel.engine.protocol import v1_converters as converters
from datasentinel.engine.scoring.core import ScoredBatch, TopFeatures
from datasentinel.v1 import scoring_pb2 as pb


def _request(ids: list[int], dim: int = 3, request_id: str = "", floats: bool = False):
    x = np.arange(len(ids) * dim, dtype=np.float32).reshape(len(ids), dim)
    request = pb.ScoreRequest(request_id=request_id, ids=ids, include_feature_errors=True)
    if floats:
        request.floats.values.extend(x.ravel().tolist())
        request.floats.cols = dim
    else:
        request.raw.data, request.raw.rows, request.raw.cols = x.tobytes(), len(ids), dim
    return request


def _result(request: pb.ScoreRequest, feature_errors: bool) -> ScoredBatch:
    rows = len(request.ids)
    scores = np.random.default_rng(rows).gamma(2.0, size=rows).astype(np.float32)
    errors = np.random.default_rng(1).random((rows, 3), dtype=np.float32)
    return ScoredBatch(
        ids=request.ids,
        scores=scores,
        is_anomaly=scores > 2.0,
        threshold=2.0,
        model_version="v-test",
        feature_errors=errors if feature_errors else None,
    )


def _field_by_field(result: ScoredBatch, request_id: str) -> pb.ScoreResponse:
    """What the response must equal: every field filled the plain way."""
    response = pb.ScoreResponse(
        request_id=request_id,
        ids=list(result.ids),
        scores=result.scores.tolist(),
        is_anomaly=result.is_anomaly.tolist(),
        threshold=result.threshold,
        model_version=result.model_version,
    )
    if result.feature_errors is not None:
        rows, cols = result.feature_errors.shape
        response.feature_errors.CopyFrom(
            pb.RawVectors(data=result.feature_errors.tobytes(), rows=rows, cols=cols)
        )
    return response


@pytest.mark.parametrize(
    "ids",
    [[7], [0, 1, 2], [2**64 - 1, 0, 2**63, 300, 1], list(range(10**6, 10**6 + 1024))],
    ids=["one", "three", "extreme-ids", "1024"],
)
@pytest.mark.parametrize("floats", [False, True], ids=["raw", "floats"])
@pytest.mark.parametrize("feature_errors", [False, True], ids=["scores", "with-errors"])
def test_response_equals_the_field_by_field_response(ids, floats, feature_errors):
    request = _request(ids, request_id="req-42", floats=floats)
    before = request.SerializeToString()
    result = _result(request, feature_errors)

    response = converters.response_from_result(result, request)

    assert response == _field_by_field(result, "req-42")
    assert request.SerializeToString() == before, "the request must not be changed"
    # Every row is its own: ids, scores and flags line up.
    assert list(response.ids) == ids
    assert np.array_equal(np.array(response.scores, np.float32), result.scores)
    assert list(response.is_anomaly) == result.is_anomaly.tolist()


def test_request_and_response_share_the_numbers_and_types_the_builder_copies():
    request, response = pb.ScoreRequest.DESCRIPTOR, pb.ScoreResponse.DESCRIPTOR
    for name in ("request_id", "ids"):
        mine, theirs = request.fields_by_name[name], response.fields_by_name[name]
        assert (mine.number, mine.type) == (theirs.number, theirs.type)
        assert mine.is_repeated == theirs.is_repeated
    fields = response.fields_by_name
    assert (fields["scores"].type, fields["is_anomaly"].type) == (
        fields["scores"].TYPE_FLOAT,
        fields["is_anomaly"].TYPE_BOOL,
    )


def test_stream_result_is_the_response_with_the_request_id():
    request = _request([5, 6, 2**64 - 1], request_id="abc")
    result = _result(request, True)
    answer = converters.stream_result(result, request)
    assert answer.request_id == "abc"
    assert answer.WhichOneof("outcome") == "result"
    assert answer.result == converters.response_from_result(result, request)
    assert answer.result == _field_by_field(result, "abc")


@pytest.mark.parametrize("rows", [1, 3, 300])
def test_severity_and_explanations_equal_the_field_by_field_response(rows):
    """The wire-built severity and explanations (top features, missing features) are what
    protobuf builds field by field; the request's own threshold and top_features are not echoed
    (their field numbers mean other things in the response)."""
    request = _request(list(range(rows)), request_id="r")
    request.threshold, request.top_features = 1.5, 2
    base = _result(request, False)
    rng = np.random.default_rng(rows)
    names = ("f0", "a much longer feature name, " * 6, "ü")  # a 2-byte length; non-ASCII
    index = np.stack([rng.permutation(3)[:2] for _ in range(rows)])
    top = TopFeatures(
        index=index,
        share=rng.random((rows, 2), dtype=np.float32),
        value=rng.normal(size=(rows, 2)).astype(np.float32),
        expected=rng.normal(size=(rows, 2)).astype(np.float32),
    )
    missing = np.zeros((rows, 3), bool)
    missing[0, [0, 2]] = True
    result = dataclasses.replace(
        base,
        severity=rng.random(rows, dtype=np.float32),
        top_features=top,
        missing=missing,
        feature_names=names,
    )

    response = converters.response_from_result(result, request)

    expected = _field_by_field(result, "r")
    expected.severity.extend(result.severity.tolist())
    for row in range(rows):
        explanation = expected.explanations.add()
        for j in range(2):
            explanation.top_features.add(
                name=names[index[row, j]],
                share=top.share[row, j],
                value=top.value[row, j],
                expected=top.expected[row, j],
            )
        explanation.missing_features.extend(names[i] for i in np.flatnonzero(missing[row]))
    assert response == expected
    assert list(response.explanations[0].missing_features) == ["f0", "ü"]


def test_missing_features_alone_give_one_explanation_per_row():
    request = _request([4, 5])
    missing = np.array([[False, True, False], [False, False, False]])
    result = dataclasses.replace(_result(request, False), missing=missing, feature_names="abc")
    response = converters.response_from_result(result, request)
    assert [list(e.missing_features) for e in response.explanations] == [["b"], []]
    assert [len(e.top_features) for e in response.explanations] == [0, 0]


@pytest.mark.parametrize("parts", ["top", "missing", "both"])
@pytest.mark.parametrize("name_length", [1, 200, 20000])  # row lengths of 1, 2 and 3 bytes
def test_explanations_laid_out_by_numpy_are_the_joined_ones(parts, name_length):
    rows, rng = 40, np.random.default_rng(name_length)
    names = ("a" * name_length, "b", "ü" * 3)
    top = missing = None
    if parts != "missing":
        top = TopFeatures(
            index=np.stack([rng.permutation(3) for _ in range(rows)]),
            share=rng.random((rows, 3), dtype=np.float32),
            value=rng.normal(size=(rows, 3)).astype(np.float32),
            expected=np.full((rows, 3), np.nan, np.float32),
        )
    if parts != "top":
        missing = rng.random((rows, 3)) < 0.3
    wire = converters._wire_names(names)
    joined = converters._joined(rows, top, missing, wire)
    assert converters._masked(rows, top, missing, wire) == joined
    assert len(pb.ScoreResponse.FromString(joined).explanations) == rows


@given(st.integers(0, 2**64 - 1))
@example(0)
@example(127)
@example(128)
@example(2**14)
@example(2**64 - 1)
def test_varints_are_protobufs_own_encoding(n):
    # ids is field 2, packed: key 0x12, the length (one byte here), then n's varint.
    assert pb.ScoreRequest(ids=[n]).SerializeToString()[2:] == converters._varint(n)


def test_each_answer_carries_its_own_threshold_and_model_version():
    # The threshold and version bytes are kept between answers: a request's own threshold, or a
    # reloaded model's version, must still reach its answer and no other.
    request = _request([1, 2])
    for threshold, version in [(2.0, "v1"), (0.5, "v1"), (2.0, "v2"), (2.0, "v1")]:
        result = dataclasses.replace(
            _result(request, False), threshold=threshold, model_version=version
        )
        response = converters.response_from_result(result, request)
        assert (response.threshold, response.model_version) == (threshold, version)
