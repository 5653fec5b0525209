"""Per-feature scalings fitted on training rows, which hold anomalies.

Two are used, one per autoencoder group (graph.py), because no one scaling suits every kind of
data (benchmarks/DETECTION.md):

- ``robust_scaling``: median and IQR / 1.349. Anomalies do not pull it, so values far out along a
  feature stay far out; the narrow autoencoders need that on data whose anomalies lie along the
  main directions (pendigits, thyroid).
- ``spread_scaling``: median and the standard deviation of the values clipped to their 1st-99th
  percentiles. Where a feature is heavy-tailed or mostly one value, its IQR is tiny next to its
  spread, and the IQR makes its ordinary variation look huge: faint pixels of image data, rare
  counts. The wide autoencoders need every feature at about unit variance instead.

Both are floored at the feature's **resolution**, the median gap between its distinct values.
A binary flag set in 5% of rows has a standard deviation of 0.22 and an IQR of 0: scaled by
either, every set flag is a 4.5-sigma event and a row's few random flags drown out what the other
features say (the mixed medical set: ROC-AUC 0.84 -> 0.90 with the floor). A feature cannot vary
by less than its own step, so one step is at most one unit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# IQR / 1.349 is the std of a normal distribution: robust scales stay comparable to z-scores.
IQR_TO_STD = 1.349
# Percentiles the spread scaling clips at. It caps how far any value can pull the spread, not how
# many: under 1% of huge values on one side leave it near the clean std (0.95%: 3.03 vs 2.95),
# a larger share still inflates it (the robust scaling is the one that ignores them).
CLIP_PERCENTILES = (1.0, 99.0)
# Rows the resolution is measured on: the median gap of a continuous feature is tiny either way,
# and a discrete feature shows all its common values in far fewer rows.
RESOLUTION_ROWS = 20_000
# Values worked on at once (16 MB of float64). numpy's temporaries for a whole large table are
# each a fresh mapping that the kernel faults in page by page (glibc hands blocks over 32 MB back
# to the system on every free): the scalings and the tail table of 80,000 x 500 rows took 13-16 s,
# most of it in page faults; a block of columns at a time reuses the same memory.
BLOCK_VALUES = 1 << 21


def robust_scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and IQR / 1.349 (float32). Where the IQR is 0 the std stands in; a
    constant feature gets 1, not 0: its scaled value is then 0 in training and any change shows."""
    values = np.asarray(features, dtype=np.float64)
    q25, centre, q75 = by_columns(values, lambda block: np.percentile(block, [25, 50, 75], axis=0))
    scale = (q75 - q25) / IQR_TO_STD
    return centre.astype(np.float32), _finish(scale, values)


def spread_scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and the std of the values clipped to CLIP_PERCENTILES (float32)."""
    values = np.asarray(features, dtype=np.float64)
    percentiles = [CLIP_PERCENTILES[0], 50, CLIP_PERCENTILES[1]]

    def clipped_std(block: np.ndarray) -> np.ndarray:
        low, centre, high = np.percentile(block, percentiles, axis=0)
        return np.stack([centre, np.clip(block, low, high).std(axis=0)])

    centre, scale = by_columns(values, clipped_std)
    return centre.astype(np.float32), _finish(scale, values)


def _finish(scale: np.ndarray, values: np.ndarray) -> np.ndarray:
    def std_and_constant(block: np.ndarray) -> np.ndarray:
        # Judged by the range, not the std: a float64 constant's std can come out as 1e-13.
        return np.stack([block.std(axis=0), np.ptp(block, axis=0) == 0])

    std, constant = by_columns(values, std_and_constant)
    scale = np.where(scale > 0, scale, std)
    scale = np.maximum(scale, resolution(values))
    return np.where((constant > 0) | ~(scale > 0), 1.0, scale).astype(np.float32)


def by_columns(values: np.ndarray, per_column: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``per_column(values)`` for a function whose result's last axis is the columns, computed a
    block of at most ``BLOCK_VALUES`` values at a time (each column's own arithmetic is the
    same, so the result is identical to one call on the whole table)."""
    width = max(1, BLOCK_VALUES // max(1, len(values)))
    starts = range(0, values.shape[1], width)
    blocks = [per_column(values[:, start : start + width]) for start in starts]
    return np.concatenate(blocks, axis=-1) if blocks else per_column(values)


def resolution(features: np.ndarray) -> np.ndarray:
    """Per feature, the median gap between its sorted distinct values (0 for a constant one),
    measured on the first ``RESOLUTION_ROWS`` rows (the trainer's rows are shuffled)."""
    rows = np.asarray(features[:RESOLUTION_ROWS], dtype=np.float64)
    gaps = np.zeros(rows.shape[1])
    for column in range(rows.shape[1]):
        distinct = np.unique(rows[:, column])
        if len(distinct) > 1:
            gaps[column] = np.median(np.diff(distinct))
    return gaps
