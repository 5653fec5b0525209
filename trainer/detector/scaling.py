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


def robust_scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and IQR / 1.349 (float32). Where the IQR is 0 the std stands in; a
    constant feature gets 1, not 0: its scaled value is then 0 in training and any change shows."""
    values = np.asarray(features, dtype=np.float64)
    q25, centre, q75 = np.percentile(values, [25, 50, 75], axis=0)
    scale = (q75 - q25) / IQR_TO_STD
    return centre.astype(np.float32), _finish(scale, values)


def spread_scaling(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature median and the std of the values clipped to CLIP_PERCENTILES (float32)."""
    values = np.asarray(features, dtype=np.float64)
    low, centre, high = np.percentile(values, [CLIP_PERCENTILES[0], 50, CLIP_PERCENTILES[1]], 0)
    scale = np.clip(values, low, high).std(axis=0)
    return centre.astype(np.float32), _finish(scale, values)


def _finish(scale: np.ndarray, values: np.ndarray) -> np.ndarray:
    scale = np.where(scale > 0, scale, values.std(axis=0))
    scale = np.maximum(scale, resolution(values))
    # Judged by the range, not the std: a float64 constant's std can come out as 1e-13.
    constant = np.ptp(values, axis=0) == 0
    return np.where(constant | ~(scale > 0), 1.0, scale).astype(np.float32)


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
