"""The tail table (trainer/detector/tail.py): ECOD-like tail surprise, -log(min(1, 2 p)) nats,
looked up from a table the exported graph can evaluate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasentinel.trainer.detector.scaling import robust_scaling
from datasentinel.trainer.detector.tail import GRID, TailTerms, _tail_nats, signed_log

ROWS = 2000


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _with_normal_column(column: np.ndarray) -> np.ndarray:
    """``column`` as feature 0 beside a normal feature: the trainer always has two or more."""
    other = _rng().normal(size=len(column))
    return np.column_stack([column, other]).astype(np.float32)


def _direct_nats(training: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The definition, by counting: p = (min(#<=x, #>=x) + 1) / (n + 2)."""
    ordered = np.sort(training.astype(np.float64))
    n = len(ordered)
    at_or_below = np.searchsorted(ordered, values, side="right")
    at_or_above = n - np.searchsorted(ordered, values, side="left")
    p = (np.minimum(at_or_below, at_or_above) + 1) / (n + 2)
    return -np.log(np.minimum(1.0, 2 * p))


def _terms(tail: TailTerms, column: np.ndarray) -> np.ndarray:
    """Feature 0's terms at ``column`` (feature 1 held at 0)."""
    rows = np.column_stack([column, np.zeros_like(column)]).astype(np.float32)
    with torch.no_grad():
        return tail(torch.from_numpy(rows))[:, 0].numpy()


def test_terms_at_training_values_agree_with_the_definition():
    features = _with_normal_column(_rng().normal(5.0, 2.0, ROWS))
    got = _terms(TailTerms.fit(features), features[:, 0])
    want = _direct_nats(features[:, 0], features[:, 0])
    # Interpolation between grid points costs a little (measured: mean 0.009 nats)...
    assert np.abs(got - want).mean() < 0.03
    # ...and nothing where the grid meets the data: the most extreme values, log(n / 2) or so.
    ends = [features[:, 0].argmin(), features[:, 0].argmax()]
    np.testing.assert_allclose(got[ends], want[ends], atol=1e-4)
    assert want[ends].min() > 6.0


def test_binary_feature_terms_are_exact_at_both_values():
    flag = (_rng().random(ROWS) < 0.05).astype(np.float32)
    got = _terms(TailTerms.fit(_with_normal_column(flag)), np.array([0.0, 1.0]))
    want = _direct_nats(flag, np.array([0.0, 1.0]))
    assert want[0] == 0 and want[1] > 2  # the common value is no surprise, the rare one is
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_term_is_about_zero_at_the_median():
    column = _rng().normal(5.0, 2.0, ROWS)
    got = _terms(TailTerms.fit(_with_normal_column(column)), np.array([np.median(column)]))
    assert got[0] == pytest.approx(0.0, abs=0.02)


def test_terms_keep_growing_beyond_the_training_range():
    column = _rng().normal(5.0, 2.0, ROWS)
    tail = TailTerms.fit(_with_normal_column(column))
    spreads = np.array([0.0, 1.0, 2.0, 10.0, 100.0, 1e4, 1e6])
    above = _terms(tail, column.max() + 2.0 * spreads)
    below = _terms(tail, column.min() - 2.0 * spreads)
    for terms in (above, below):
        assert bool(np.all(np.diff(terms) > 0)), terms
        assert np.isfinite(terms[-1])  # 1e6 spreads out


def test_constant_column_scores_zero_at_its_value_and_more_elsewhere():
    tail = TailTerms.fit(_with_normal_column(np.full(ROWS, 4.2)))
    at_value, *elsewhere = _terms(tail, np.array([4.2, 4.3, 4.1, 100.0, -100.0]))
    assert at_value == 0
    assert min(elsewhere) > 0


def test_fit_column_by_column_equals_the_whole_table_at_once():
    # The fit goes a column at a time (memory); its grid and table must be those of the signed
    # log of the whole table at once, for every kind of column (the constant one included).
    rng = _rng()
    table = np.column_stack(
        [rng.normal(size=500), np.exp(2 * rng.normal(size=500)), rng.random(500) < 0.05,
         rng.poisson(2.0, 500), np.full(500, 3.0)]
    ).astype(np.float32)  # fmt: skip
    centre, scale = robust_scaling(table)
    u = signed_log((np.asarray(table, np.float64) - centre) / scale)
    lower, upper = u.min(axis=0), u.max(axis=0)
    step = np.where(upper > lower, (upper - lower) / (GRID - 1), 1.0)
    grid = lower[:, None] + step[:, None] * np.arange(GRID)
    whole = np.stack([_tail_nats(u[:, j], grid[j]) for j in range(u.shape[1])])
    tail = TailTerms.fit(table)
    np.testing.assert_array_equal(tail.lower.numpy(), lower.astype(np.float32))
    np.testing.assert_array_equal(tail.step.numpy(), step.astype(np.float32))
    np.testing.assert_array_equal(tail.table.numpy(), whole.astype(np.float32).reshape(-1))
    # Given the scaling it would compute itself, it fits the same table.
    again = TailTerms.fit(table, (centre, scale))
    np.testing.assert_array_equal(again.table.numpy(), tail.table.numpy())
