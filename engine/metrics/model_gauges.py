"""Keeps the gauges of the model in force (its threshold) in step with the scoring core, which a
hot reload swaps: read from the core each second rather than set by the reloader, so whichever
way a model comes in (start, poll, SIGHUP) the gauge follows."""

from __future__ import annotations

import asyncio

from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.scoring.core import ScoringCore

INTERVAL_SECONDS = 1.0


async def follow_model(core: ScoringCore, interval: float = INTERVAL_SECONDS) -> None:
    seen = None
    while True:
        model = core.model
        if model is not seen:
            metrics().model_in_force(model.threshold)
            seen = model
        await asyncio.sleep(interval)
