"""Input messages to vectors and keys (or a reason to dead-letter them), verdicts and dead
letters as messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from datasentinel.producer.kafka.codec import (
    Decoder,
    Event,
    Rejected,
    Source,
    dead_letter,
    verdict,
)

SOURCE = Source("events", 2, 41)


def decode(value: bytes, accepts_missing: bool = False, max_bytes: int = 1000):
    return Decoder(["a", "b"], accepts_missing, max_bytes).decode(SOURCE, b"k", value, 123)


def test_features_by_name_in_the_models_order_and_other_fields_kept_as_keys():
    event = decode(b'{"b": 2.5, "machine": "m-1", "a": -1, "t": "2026"}')
    assert isinstance(event, Event)
    np.testing.assert_array_equal(event.vector, np.array([-1.0, 2.5], dtype=np.float32))
    assert event.keys == {"machine": "m-1", "t": "2026"}
    assert (event.key, event.timestamp_ms, event.source) == (b"k", 123, SOURCE)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"nope", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"a": 1}', "feature 'b' missing"),
        (b'{"a": 1, "b": "x"}', "not a number"),
        (b'{"a": 1, "b": true}', "not a number"),
        (b'{"a": 1, "b": NaN}', "not finite"),
        (b'{"a": 1, "b": 1e300}', "beyond float32"),
        (b'{"a": 1, "b": null}', "null"),
        (b"\xff\xfe", "not JSON"),
        (None, "empty message"),
        (b'{"a": 1, "b": 2, "pad": "' + b"x" * 2000 + b'"}', "over the limit"),
    ],
)
def test_unscorable_messages_are_rejected_with_a_reason(value, reason):
    rejected = decode(value)
    assert isinstance(rejected, Rejected)
    assert reason in rejected.reason
    assert (rejected.source, rejected.key, rejected.value) == (SOURCE, b"k", value)


def test_null_is_missing_for_a_model_that_fills_it_in():
    event = decode(b'{"a": 1, "b": null}', accepts_missing=True)
    assert isinstance(event, Event) and np.isnan(event.vector[1])


def test_verdict_has_the_keys_the_answer_and_the_source():
    event = decode(b'{"a": 1, "b": 2, "machine": "m-1", "score": "theirs"}')
    row = {
        "score": 0.5,
        "is_anomaly": False,
        "severity": 0.3,
        "threshold": 1.0,
        "model_version": "v1",
        "top_features": [],
    }
    out = json.loads(verdict(event, row))
    assert out["machine"] == "m-1" and out["input_score"] == "theirs"
    assert out["score"] == 0.5 and out["model_version"] == "v1"
    assert out["source"] == {"topic": "events", "partition": 2, "offset": 41}


def test_dead_letter_has_the_reason_the_source_and_the_value_as_text():
    out = json.loads(dead_letter(decode(b'{"a": 1, "b": "x\xff"}')))
    assert "not JSON" in out["reason"] or "not a number" in out["reason"]
    assert out["source"] == {"topic": "events", "partition": 2, "offset": 41}
    assert out["value"].startswith('{"a": 1')
