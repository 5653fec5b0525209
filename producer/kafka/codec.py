"""Messages in and out: an input message as a vector and its keys (or the reason it cannot be
scored), a verdict as an output message, an unscorable event as a dead letter.

Input: one JSON object per message, the model's features by name (any order), every other field
a key, copied into the verdict as it was. Output: the keys, then score, is_anomaly, severity,
threshold, model_version, top_features and ``source`` = {topic, partition, offset}, which names
the event uniquely: a repeat (after a crash, at-least-once) is a second message with the same
``source``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Output fields the engine fills; an input key of the same name is kept as ``input_<name>``.
VERDICT_FIELDS = (
    "score",
    "is_anomaly",
    "severity",
    "threshold",
    "model_version",
    "top_features",
    "source",
)


@dataclass(frozen=True)
class Source:
    """Where an event came from: unique per event, so repeats are recognised by it."""

    topic: str
    partition: int
    offset: int

    def as_dict(self) -> dict:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


@dataclass(frozen=True)
class Event:
    """A scorable event: its vector in the model's feature order, the other fields as keys."""

    source: Source
    key: bytes | None
    vector: np.ndarray  # float32 [input_dim]
    keys: dict
    timestamp_ms: int | None  # the message's timestamp, for the end-to-end latency


@dataclass(frozen=True)
class Rejected:
    """An event that cannot be scored: it goes to the dead-letter topic with ``reason``."""

    source: Source
    key: bytes | None
    value: bytes | None
    reason: str


class Decoder:
    """Input messages to ``Event``s for one model (its feature names, whether it fills in
    missing values), or ``Rejected`` with a reason a person can act on."""

    def __init__(self, feature_names: list[str], accepts_missing: bool, max_bytes: int) -> None:
        self.feature_names = list(feature_names)
        self._features = set(feature_names)
        self._accepts_missing = accepts_missing
        self._max_bytes = max_bytes

    def decode(
        self, source: Source, key: bytes | None, value: bytes | None, timestamp_ms: int | None
    ) -> Event | Rejected:
        reason = self._size_problem(value)
        if reason is None:
            try:
                obj = json.loads(value)
            except (UnicodeDecodeError, ValueError) as e:
                reason = f"not JSON: {e}"
            else:
                if not isinstance(obj, dict):
                    reason = f"not a JSON object but {type(obj).__name__}"
                else:
                    return self._event(source, key, value, obj, timestamp_ms)
        return Rejected(source, key, value, reason)

    def _size_problem(self, value: bytes | None) -> str | None:
        if value is None:
            return "empty message (no value)"
        if len(value) > self._max_bytes:
            return f"message of {len(value)} bytes is over the limit of {self._max_bytes}"
        return None

    def _event(self, source, key, value, obj: dict, timestamp_ms) -> Event | Rejected:
        vector = np.empty(len(self.feature_names), dtype=np.float32)
        for i, name in enumerate(self.feature_names):
            if name not in obj:
                return Rejected(source, key, value, f"feature {name!r} missing")
            number = _number(obj[name], self._accepts_missing)
            if isinstance(number, str):
                return Rejected(source, key, value, f"feature {name!r}: {number}")
            vector[i] = number
        keys = {k: v for k, v in obj.items() if k not in self._features}
        return Event(source, key, vector, keys, timestamp_ms)


def _number(value: object, accepts_missing: bool) -> float | str:
    """The value as a float, or why it is not one."""
    if value is None:
        if accepts_missing:
            return math.nan  # the model fills it in and names it in the verdict
        return "null, and the model does not fill in missing values"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"not a number: {value!r}"[:200]
    try:
        number = float(value)
    except OverflowError:
        return "beyond float32's range"
    if not math.isfinite(number):
        return f"not finite: {value!r}"
    if abs(number) > FLOAT32_MAX:
        return f"{value!r} is beyond float32's range"
    return number


def verdict(event: Event, row: dict) -> bytes:
    """The output message of one scored event: its keys, then the engine's answer and source.
    ``row``: score, is_anomaly, severity, threshold, model_version, top_features."""
    out = {(f"input_{k}" if k in VERDICT_FIELDS else k): v for k, v in event.keys.items()}
    out.update(row)
    out["source"] = event.source.as_dict()
    return json.dumps(out, separators=(",", ":")).encode()


def dead_letter(rejected: Rejected) -> bytes:
    """The dead-letter message: why, where from, and the original value (as text, undecodable
    bytes replaced) so it can be fixed and sent again."""
    value = None if rejected.value is None else rejected.value.decode("utf-8", "replace")
    out = {"reason": rejected.reason, "source": rejected.source.as_dict(), "value": value}
    return json.dumps(out, separators=(",", ":")).encode()
