"""Severity: how bad a score is, 0..1, from the model's own table (config.json ``severity``).

A score's severity is the share of held-out training rows that scored lower than it: 0.5 is a
typical row, 0.99 a row as rare as 1 in 100. The trainer writes the table (ascending scores and
their levels, taken from the held-out rows the threshold came from); this module reads it, for the
engine and for anyone holding a score and the config.

Within the table, severity is interpolated linearly, so it is monotone in the score. Above the
table's highest score it keeps rising towards 1, as a tail that decays like ``1 / score``
(``1 - (1 - top level) * top score / score``): a row far beyond anything held out is graded above
one just beyond it, never level with it. Below the lowest score it is the lowest level.

The bands name severities as rarities, like Elastic's warning/minor/major/critical: a band is
reached when a score is as rare as 1 held-out row in 20, 100, 1,000 and 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datasentinel.model_config import Severity

# (lowest severity, name), ascending.
BANDS: tuple[tuple[float, str], ...] = (
    (0.0, "normal"),
    (0.95, "warning"),
    (0.99, "minor"),
    (0.999, "major"),
    (0.9999, "critical"),
)
# Table points the trainer writes: enough for the interpolation to follow the bulk and, with the
# finer steps near the top, the tail where the bands lie.
TABLE_LEVELS = np.unique(
    np.concatenate([np.linspace(0, 0.9, 91), np.linspace(0.9, 0.99, 91), np.linspace(0.99, 1, 101)])
)


@dataclass(frozen=True)
class Curve:
    """A severity table as float64 arrays, made once per model: converting the table's lists
    (283 floats each) on every call cost ~10 us, the arrays nothing."""

    scores: np.ndarray
    levels: np.ndarray

    @classmethod
    def from_table(cls, table: Severity) -> Curve:
        return cls(np.asarray(table.scores, np.float64), np.asarray(table.levels, np.float64))


def severity(scores: np.ndarray, table: Severity | Curve) -> np.ndarray:
    """Severity of each score (float32, same shape); NaN scores give NaN, +Inf gives 1."""
    curve = table if isinstance(table, Curve) else Curve.from_table(table)
    points, levels = curve.scores, curve.levels
    values = np.asarray(scores, dtype=np.float64)
    inside = np.interp(values, points, levels)
    top_score, top_level = points[-1], levels[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        beyond = 1.0 - (1.0 - top_level) * top_score / values
    out = np.where(values > top_score, np.maximum(beyond, top_level), inside)
    return out.astype(np.float32)


def band(value: float) -> str:
    """The name of the band a severity falls in ('normal' .. 'critical')."""
    name = BANDS[0][1]
    for lowest, label in BANDS:
        if value >= lowest:
            name = label
    return name


def table_from_scores(held_out: np.ndarray, source: str) -> Severity:
    """The table for a model whose held-out rows scored ``held_out``: the scores at
    ``TABLE_LEVELS`` (empirical quantiles, so the level of a score is the share below it). The
    levels are shrunk by ``n / (n + 1)``: the highest held-out score is then as rare as 1 row in
    ``n + 1``, not certain, and the tail above it has room to rise."""
    values = np.sort(np.asarray(held_out, dtype=np.float64)[np.isfinite(held_out)])
    quantiles = np.quantile(values, TABLE_LEVELS)
    # np.quantile is monotone up to rounding: make it exactly so.
    quantiles = np.maximum.accumulate(quantiles)
    levels = TABLE_LEVELS * len(values) / (len(values) + 1)
    return Severity(
        scores=[float(v) for v in quantiles],
        levels=[float(v) for v in levels],
        rows=len(values),
        source=source,
    )
