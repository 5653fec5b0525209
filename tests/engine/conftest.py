"""Fixtures shared by the engine tests that drive the scoring core directly (no gRPC)."""

from __future__ import annotations

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
