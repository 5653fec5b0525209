"""Per-feature tail surprise, ECOD-style, as a lookup table the exported graph can evaluate.

For each feature the training rows' empirical distribution gives a two-sided tail probability
``p(x) = min(P(X <= x), P(X >= x))``, and the term is ``-log(min(1, 2 p))`` nats: 0 at the median,
about ``log(n / 2)`` at the most extreme training value. It is what an autoencoder cannot see on
its own: a value in the far lower tail of a skewed feature (a lab value near zero) is a small
number in any linear scaling, and a rank-based term ranks it as far out as it is. It needs no
units, so binary, discrete, heavy-tailed and mixed-scale features are all handled alike.

The graph cannot search sorted training values, so the term is tabulated on a grid of ``GRID``
points per feature, equally spaced in the signed log of the robust z-score,
``sign(z) log(1 + |z|)`` (it keeps heavy tails from crowding the bulk into one cell, and needs no
square that could overflow), and linearly interpolated. Beyond the training range the term keeps
growing by one nat per unit of that log, i.e. the tail is taken to decay like 1 / distance: an
input far outside everything seen in training always scores higher the further out it is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from datasentinel.trainer.detector.scaling import robust_scaling

GRID = 64


class TailTerms(nn.Module):
    """Raw features ``[N, D]`` -> tail terms ``[N, D]`` (nats, >= 0)."""

    def __init__(self, centre: np.ndarray, scale: np.ndarray, lower: np.ndarray,
                 step: np.ndarray, table: np.ndarray) -> None:  # fmt: skip
        super().__init__()
        dim = len(centre)
        self.register_buffer("centre", torch.as_tensor(centre, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.register_buffer("lower", torch.as_tensor(lower, dtype=torch.float32))
        self.register_buffer("step", torch.as_tensor(step, dtype=torch.float32))
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.float32).reshape(-1))
        # Row j of the table starts at j * GRID in the flattened table the graph gathers from.
        self.register_buffer("offsets", torch.arange(dim) * GRID)

    @classmethod
    def fit(
        cls, features: np.ndarray, scaling: tuple[np.ndarray, np.ndarray] | None = None
    ) -> TailTerms:
        """``scaling``: ``robust_scaling(features)`` when the caller has it already."""
        centre, scale = robust_scaling(features) if scaling is None else scaling
        values = np.asarray(features, np.float64)
        lower, step, table = [], [], []
        # A column at a time: the signed log of a whole large table at once was most of the
        # time of this fit (scaling.BLOCK_VALUES says why); each column's values are the same.
        for j in range(values.shape[1]):
            u = signed_log((values[:, j] - centre[j]) / scale[j])
            low, high = u.min(), u.max()
            # A constant feature gets steps of one unit: any other value then climbs the table.
            lower.append(low)
            step.append((high - low) / (GRID - 1) if high > low else 1.0)
            table.append(_tail_nats(u, low + step[-1] * np.arange(GRID)))
        return cls(centre, scale, np.array(lower), np.array(step), np.stack(table))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        u = signed_log((features - self.centre) / self.scale)
        position = (u - self.lower) / self.step
        inside = position.clamp(0, GRID - 1)
        cell = inside.floor().clamp(max=GRID - 2)
        fraction = inside - cell
        index = cell.long() + self.offsets
        left, right = self.table[index], self.table[index + 1]
        interpolated = left + (right - left) * fraction
        # Grid steps beyond either end, back in signed-log units: one nat per unit.
        beyond = (position - (GRID - 1)).clamp(min=0) + (-position).clamp(min=0)
        return interpolated + beyond * self.step


def signed_log(z):
    """``sign(z) log(1 + |z|)`` for numpy arrays and torch tensors alike."""
    if isinstance(z, torch.Tensor):
        return torch.sign(z) * torch.log1p(torch.abs(z))
    return np.sign(z) * np.log1p(np.abs(z))


def _tail_nats(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """-log(min(1, 2 p)) at each grid point, p the smoothed two-sided empirical tail probability
    of the training value **nearest** the grid point. Between the values of a discrete feature
    the table then steps from one value's term to the next, and a lookup at a value itself
    gets that value's own term; a grid point's own tail probability would mix in the gap after
    it (0.27 nats at the mode of Poisson counts instead of 0, 3.7 instead of 2.8 at 7).
    Continuous features have a training value next to every grid point: no change there."""
    ordered = np.sort(values)
    distinct = np.unique(ordered)
    right = np.clip(np.searchsorted(distinct, grid), 1, len(distinct) - 1)
    left = right - 1
    n = len(ordered)
    if len(distinct) == 1:
        # A constant feature: its grid runs on past the one value, and every other value is
        # as rare as anything never seen.
        return np.where(np.arange(len(grid)) == 0, 0.0, np.log((n + 2) / 2))
    closer_left = grid - distinct[left] <= distinct[right] - grid
    nearest = np.where(closer_left, distinct[left], distinct[right])
    at_or_below = np.searchsorted(ordered, nearest, side="right")
    at_or_above = n - np.searchsorted(ordered, nearest, side="left")
    p = (np.minimum(at_or_below, at_or_above) + 1) / (n + 2)
    return -np.log(np.minimum(1.0, 2 * p))
