"""The scoring core refuses bad batches with a message naming the problem."""

import numpy as np
import pytest

from datasentinel.engine.errors import InvalidInput, TooLarge
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore


@pytest.fixture
def core(tiny_model):
    model = load_model(tiny_model.dir, RuntimeOptions(providers=("CPUExecutionProvider",)))
    return ScoringCore(model, Limits(max_batch_rows=8))


def batch(rows, cols=4, ids=None):
    vectors = np.zeros((rows, cols), dtype=np.float32)
    return ScoreBatch(list(range(rows)) if ids is None else ids, vectors)


def test_valid_batch_passes(core):
    core.validate(batch(3))


def test_empty_batch(core):
    with pytest.raises(InvalidInput, match="empty batch"):
        core.validate(batch(0))


def test_over_the_maximum(core):
    with pytest.raises(TooLarge, match="9 vectors exceeds the engine's maximum of 8"):
        core.validate(batch(9))


def test_wrong_row_length_names_the_expected_features(core):
    expected = r"3 features but the model expects 4 \(f0, f1, f2, f3\)"
    with pytest.raises(InvalidInput, match=expected):
        core.validate(batch(2, cols=3))


def test_id_count_must_match_rows(core):
    with pytest.raises(InvalidInput, match="1 ids for 2 vectors"):
        core.validate(batch(2, ids=[7]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_value_names_row_id_and_feature(core, bad):
    b = batch(3, ids=[10, 11, 12])
    b.vectors[1, 2] = bad
    with pytest.raises(InvalidInput, match="vector 1 \\(id 11\\).*feature 'f2'"):
        core.validate(b)


async def test_results_flag_scores_above_threshold(core, tiny_model):
    await core.start()
    try:
        x = np.random.default_rng(5).normal(scale=3, size=(8, 4)).astype(np.float32)
        result = await core.score(ScoreBatch(list(range(8)), x, want_feature_errors=True))
    finally:
        await core.close()
    scores, errors = tiny_model.expected(x)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.is_anomaly, scores > tiny_model.threshold)
    assert result.is_anomaly.any() and not result.is_anomaly.all()
    assert result.feature_errors.shape == (8, 4)
    assert result.model_version == tiny_model.version
