"""Fixtures shared by the engine tests that drive the scoring core directly (no gRPC)."""

from __future__ import annotations

import asyncio

import pytest

from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.core import ScoringCore


@pytest.fixture
async def core(tiny_model):
    """A started scoring core on the tiny model, CPU only; closed after the test. Tests that
    need a core built differently define their own ``core`` fixture, which takes precedence."""
    cpu = RuntimeOptions(providers=("CPUExecutionProvider",))
    core = ScoringCore(load_model(tiny_model.dir, cpu))
    await core.start()
    yield core
    await core.close()


async def wait_outcomes(outcomes: list, count: int, polls: int = 250) -> None:
    """Returns once a reloader reported ``count`` outcomes, or after ``polls`` x 20 ms."""
    for _ in range(polls):
        if len(outcomes) >= count:
            return
        await asyncio.sleep(0.02)
