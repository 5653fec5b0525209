"""The engine's warm-up probes are no traffic: a fresh engine's row, anomaly and score metrics
read zero (their ratio is the anomaly rate operators watch), and the first real row counts one."""

from __future__ import annotations

import numpy as np
from prometheus_client import REGISTRY

from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore
from tests.conftest import build_tiny_model

TRAFFIC = (
    "datasentinel_rows_scored_total",
    "datasentinel_anomalies_total",
    "datasentinel_score_threshold_ratio_count",
)


def traffic() -> dict[str, float]:
    """The traffic counters now (metrics are process-wide: tests compare before and after)."""
    return {name: REGISTRY.get_sample_value(name) or 0.0 for name in TRAFFIC}


def grown(before: dict[str, float]) -> dict[str, float]:
    now = traffic()
    return {name: now[name] - before[name] for name in TRAFFIC}


async def test_fresh_engine_counts_no_rows_until_a_client_sends_one(tmp_path):
    # A threshold near 0 flags every row, the all-zero warm-up probe included: were the probe
    # counted, anomalies would grow too.
    tiny = build_tiny_model(tmp_path, threshold=1e-9)
    before = traffic()
    model = load_model(tiny.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    core = ScoringCore(model, Limits(max_batch_rows=8))
    await core.start()
    try:
        assert core.ready
        assert grown(before) == dict.fromkeys(TRAFFIC, 0.0)

        row = np.full((1, tiny.dim), 3.0, dtype=np.float32)
        result = await core.score(ScoreBatch(ids=[7], vectors=row))

        assert result.is_anomaly.tolist() == [True]
        assert grown(before) == dict.fromkeys(TRAFFIC, 1.0)
    finally:
        await core.close()
