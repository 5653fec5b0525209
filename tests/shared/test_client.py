"""The Python client's conversions: dicts keyed by feature name become vectors in the model's
order (absent or None: NaN), other keys stay with the row, a response becomes one result a row."""

import math

import numpy as np
import pytest

from datasentinel.client import rows_from_response, vectors_from_dicts
from datasentinel.v1 import scoring_pb2 as pb

NAMES = ["a", "b", "c"]


def test_dicts_are_matched_by_name_in_any_order():
    vectors, keys = vectors_from_dicts([{"c": 3, "a": 1, "b": "2", "host": "x"}], NAMES)
    assert vectors.tolist() == [[1.0, 2.0, 3.0]]
    assert keys == [{"host": "x"}]


def test_an_absent_or_none_feature_is_missing():
    vectors, _ = vectors_from_dicts([{"a": 1, "b": None}], NAMES)
    assert vectors[0, 0] == 1.0 and math.isnan(vectors[0, 1]) and math.isnan(vectors[0, 2])


def test_a_feature_that_is_not_a_number_is_refused_by_name():
    with pytest.raises(ValueError, match="row 1: feature 'b' is 'high'"):
        vectors_from_dicts([{"a": 1, "b": 2, "c": 3}, {"a": 1, "b": "high", "c": 3}], NAMES)


def test_a_response_becomes_one_result_per_row():
    response = pb.ScoreResponse(
        ids=[0, 1], scores=[0.5, 9.0], is_anomaly=[False, True], severity=[0.4, 0.999],
        threshold=2.0, model_version="v1",
        explanations=[
            pb.RowExplanation(),
            pb.RowExplanation(
                top_features=[pb.FeatureContribution(name="b", share=0.8, value=9, expected=2)],
                missing_features=["c"],
            ),
        ],
    )  # fmt: skip
    first, second = rows_from_response(response, [{"host": "x"}, {"host": "y"}])
    assert (first.is_anomaly, first.band, first.top_features, first.keys) == (
        False, "normal", [], {"host": "x"},
    )  # fmt: skip
    assert second.band == "major" and second.threshold == 2.0 and second.model_version == "v1"
    assert [(c.name, c.value, c.expected) for c in second.top_features] == [("b", 9.0, 2.0)]
    assert second.missing_features == ["c"]
    assert np.isclose(second.top_features[0].share, 0.8)


def test_an_old_model_has_no_severity():
    response = pb.ScoreResponse(ids=[0], scores=[0.5], is_anomaly=[False], threshold=1.0)
    [row] = rows_from_response(response, [{}])
    assert row.severity is None and row.band is None
