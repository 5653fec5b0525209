"""Missing values (empty cells, NaN): each feature's are filled with its training median.

The same fill is the exported graph's first op (detector.graph.fill_missing), so a row scored
later with a cell missing is scored as if the cell held the training median, and training saw the
same."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from datasentinel.trainer.data.dataset import Split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filled:
    """The split with no NaN left, the fill per feature (float32), and how many cells it took."""

    split: Split
    fill: np.ndarray
    cells: int


def fill_missing(split: Split) -> Filled:
    """Fills each feature's missing cells in both parts of ``split`` with the median of its
    training rows' values (of all rows' values when the training rows have none); logs one line
    when any were missing."""
    train, validation = split.train.features, split.validation.features
    fill = training_medians(train, validation)
    missing = np.isnan(train).sum(axis=0) + np.isnan(validation).sum(axis=0)
    cells = int(missing.sum())
    if cells == 0:
        return Filled(split, fill, 0)
    names = split.train.feature_names
    counts = [f"{names[j]} ({int(missing[j])})" for j in np.flatnonzero(missing)]
    log.info(
        "%d missing cells filled with their column's training median: %s",
        cells,
        ", ".join(counts),
    )
    filled = Split(
        replace(split.train, features=_filled(train, fill)),
        replace(split.validation, features=_filled(validation, fill)),
    )
    return Filled(filled, fill, cells)


def training_medians(train: np.ndarray, validation: np.ndarray) -> np.ndarray:
    """Per feature, the median of the training rows' values (NaN left out)."""
    fill = np.full(train.shape[1], np.nan)
    present = ~np.isnan(train).all(axis=0)
    if not np.isnan(train).any():  # np.median: nanmedian took 8 s on 80,000 x 500
        return np.median(train, axis=0).astype(np.float32)
    if present.any():
        fill[present] = np.nanmedian(train[:, present].astype(np.float64), axis=0)
    if not present.all():  # only validation rows have values (dataset.py refuses a column of none)
        fill[~present] = np.nanmedian(validation[:, ~present].astype(np.float64), axis=0)
    return fill.astype(np.float32)


def _filled(features: np.ndarray, fill: np.ndarray) -> np.ndarray:
    if not np.isnan(features).any():
        return features
    return np.where(np.isnan(features), fill, features).astype(np.float32)
