"""The in-process handler benchmark drives the handlers as the engine registers them, and counts
only scored answers: an error must stop it, not be measured as an answer."""

from __future__ import annotations

import pytest

from benchmarks import handler_cost


@pytest.mark.parametrize("case", handler_cost.CASES)
async def test_each_case_scores_every_message(tiny_model, case, monkeypatch):
    monkeypatch.setattr(handler_cost, "MESSAGES", 40)
    seconds = await handler_cost._measure(tiny_model.dir, case)
    assert 0 < seconds < 0.1


async def test_a_stream_whose_messages_fail_stops_the_run(tiny_model, monkeypatch):
    monkeypatch.setattr(handler_cost, "MESSAGES", 40)
    monkeypatch.setattr(handler_cost, "_Context", _ErrorsOnly)
    with pytest.raises(SystemExit, match="40 stream messages were not scored"):
        await handler_cost._measure(tiny_model.dir, "stream")


class _ErrorsOnly(handler_cost._Context):
    async def write(self, message) -> None:
        await super().write(b"" if type(message) is not bytes else object())
