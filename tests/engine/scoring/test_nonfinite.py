"""A score the model cannot compute (NaN/Inf from a huge finite input) is the most anomalous
answer, never "normal", and it never poisons the score-ratio metric's sum."""

from __future__ import annotations

import math

import numpy as np
import pytest

from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore
from tests.engine.nan_model import build_layered_model


@pytest.fixture
async def core(tmp_path):
    layered = build_layered_model(tmp_path / "models")
    model = load_model(layered.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    core = ScoringCore(model, Limits(max_batch_rows=64))
    await core.start()
    yield core
    await core.close()


def huge_rows(rows: int) -> np.ndarray:
    x = np.zeros((rows, 4), dtype=np.float32)
    x[0, 1] = 1e20  # overflows float32 inside the layers: +Inf and -Inf meet, NaN
    x[-1, :] = 3e38
    return x


@pytest.mark.parametrize("rows", [2, 40])  # the per-value and the bulk metrics paths
async def test_huge_finite_inputs_are_scored_inf_and_flagged(core, rows):
    raw = core.model.run(huge_rows(rows))
    assert np.isnan(raw.scores[0]) and np.isnan(raw.scores[-1])  # what the model answers
    sum_before = metrics().score_ratio._sum.get()
    nonfinite_before = metrics().nonfinite_scores._value.get()

    result = await core.score(
        ScoreBatch(list(range(rows)), huge_rows(rows), want_feature_errors=True)
    )

    assert result.scores[0] == np.inf and result.scores[-1] == np.inf
    assert result.is_anomaly[0] and result.is_anomaly[-1]
    assert not result.is_anomaly[1:-1].any()  # the zero rows in between stay normal
    assert np.isfinite(result.scores[1:-1]).all()
    assert not np.isnan(result.feature_errors).any()
    assert result.feature_errors[0, 1] == np.inf
    assert metrics().nonfinite_scores._value.get() - nonfinite_before == 2
    assert math.isfinite(metrics().score_ratio._sum.get())
    assert metrics().score_ratio._sum.get() >= sum_before


async def test_random_finite_bytes_never_score_as_normal_nan(core):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**32, size=(8, 4), dtype=np.uint32).view(np.float32)
    x[~np.isfinite(x)] = 1.0
    assert np.isnan(core.model.run(x).scores).any()
    result = await core.score(ScoreBatch(list(range(8)), x))
    assert not np.isnan(result.scores).any()
    assert ((result.scores > core.model.config.threshold) == result.is_anomaly).all()
