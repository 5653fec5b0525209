"""The two per-feature scalings (trainer/detector/scaling.py): floored at each feature's
resolution, and not pulled by a few extreme rows."""

from __future__ import annotations

import numpy as np
import pytest

from datasentinel.trainer.detector import scaling
from datasentinel.trainer.detector.scaling import resolution, robust_scaling, spread_scaling

ROWS = 2000
SCALINGS = [robust_scaling, spread_scaling]
SCALING_IDS = ["robust", "spread"]


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _with_normal_column(column: np.ndarray) -> np.ndarray:
    """``column`` as feature 0 beside a normal feature: the trainer always has two or more."""
    other = _rng().normal(size=len(column))
    return np.column_stack([column, other]).astype(np.float32)


@pytest.mark.parametrize("scaling", SCALINGS, ids=SCALING_IDS)
def test_rare_binary_flag_is_scaled_by_its_step_not_its_spread(scaling):
    flag = (_rng().random(ROWS) < 0.05).astype(np.float32)
    assert 0.15 < flag.std() < 0.3  # what the scale would be without the floor
    _, scale = scaling(_with_normal_column(flag))
    assert scale[0] == 1.0


@pytest.mark.parametrize("scaling", SCALINGS, ids=SCALING_IDS)
def test_normal_feature_is_scaled_by_about_its_std(scaling):
    centre, scale = scaling(_with_normal_column(_rng().normal(7.0, 3.0, ROWS)))
    assert centre[0] == pytest.approx(7.0, abs=0.2)
    assert scale[0] == pytest.approx(3.0, rel=0.05)


def test_spread_scaling_barely_moves_when_a_few_rows_are_huge():
    clean = _rng().normal(7.0, 3.0, ROWS)
    spoiled = clean.copy()
    # 0.5% of rows, one side: inside the 1% the spread scaling clips on each side.
    spoiled[: ROWS // 200] = 1e4
    _, clean_scale = spread_scaling(_with_normal_column(clean))
    _, spoiled_scale = spread_scaling(_with_normal_column(spoiled))
    assert spoiled_scale[0] == pytest.approx(clean_scale[0], rel=0.05)
    assert spoiled.std() > 100 * clean.std()  # what the plain std does with the same rows


@pytest.mark.parametrize("scaling", SCALINGS, ids=SCALING_IDS)
def test_constant_column_gets_unit_scale(scaling):
    centre, scale = scaling(_with_normal_column(np.full(ROWS, 4.2)))
    assert scale[0] == 1.0 and centre[0] == pytest.approx(4.2)


def test_resolution_is_the_median_gap_between_distinct_values():
    counts = _rng().poisson(3.0, ROWS).astype(np.float32)
    halves = counts / 2
    gaps = resolution(np.column_stack([counts, halves, np.full(ROWS, 9.0)]))
    np.testing.assert_array_equal(gaps, [1.0, 0.5, 0.0])


def _mixed_table(rows: int = 300, columns: int = 7) -> np.ndarray:
    """Normal, skewed, binary, count and constant columns, as float32 like the trainer's."""
    rng = _rng()
    table = rng.normal(size=(rows, columns))
    table[:, 1] = np.exp(2 * table[:, 1])
    table[:, 2] = rng.random(rows) < 0.05
    table[:, 3] = rng.poisson(2.0, rows)
    table[:, 4] = 3.0
    return table.astype(np.float32)


def _whole_table(features: np.ndarray) -> dict[str, np.ndarray]:
    """The scalings' statistics computed on the whole table at once (how they were computed
    before they went a block of columns at a time)."""
    values = np.asarray(features, np.float64)
    q = np.percentile(values, [1, 25, 50, 75, 99], axis=0)
    return {
        "robust": (q[3] - q[1]) / scaling.IQR_TO_STD,
        "spread": np.clip(values, q[0], q[4]).std(axis=0),
        "median": q[2],
        "std": values.std(axis=0),
    }


@pytest.mark.parametrize("block", [1, 2 * 300, 3 * 300, 10_000])
def test_scalings_computed_by_blocks_of_columns_equal_the_whole_table(monkeypatch, block):
    # Blocks of 1, 2 and 3 columns (the last one short) and one block for all 7.
    table = _mixed_table()
    whole = _whole_table(table)
    monkeypatch.setattr(scaling, "BLOCK_VALUES", block)
    for fit, raw in ((robust_scaling, "robust"), (spread_scaling, "spread")):
        centre, scale = fit(table)
        np.testing.assert_array_equal(centre, whole["median"].astype(np.float32))
        # Columns 0, 1, 3 are scaled by the statistic itself (2: its step, 4: constant -> 1).
        expected = np.maximum(whole[raw], scaling.resolution(table))
        np.testing.assert_array_equal(scale[[0, 1, 3]], expected[[0, 1, 3]].astype(np.float32))
        assert scale[2] == 1.0 and scale[4] == 1.0
