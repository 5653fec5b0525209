"""Built-in synthetic data: correlated, sensor-like signals with labelled injected anomalies.

The trainer learns from it when no CSV is given and the producer streams it, so the stack works out
of the box. The "plant" (how sensors depend on a few hidden drivers) is fixed by ``plant_seed``, so
a trainer and a producer with different sampling seeds see the same physics but different rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of the synthetic plant and of its anomalies."""

    n_features: int = 8
    n_drivers: int = 3
    anomaly_fraction: float = 0.02
    # Sensor noise, relative to each sensor's spread: small, so sensors stay strongly correlated.
    noise: float = 0.05
    plant_seed: int = 0


@dataclass(frozen=True)
class SyntheticData:
    """Rows in time order: features (float32), labels (1 = injected anomaly), feature names."""

    features: np.ndarray
    labels: np.ndarray
    feature_names: list[str]


def feature_names(n_features: int) -> list[str]:
    return [f"sensor_{i:02d}" for i in range(n_features)]


def generate(n_rows: int, seed: int, spec: SyntheticSpec = SyntheticSpec()) -> SyntheticData:
    """``n_rows`` time-ordered vectors; about ``spec.anomaly_fraction`` of them are anomalies."""
    if n_rows < 1:
        raise ValueError("n_rows must be >= 1")
    rng = np.random.default_rng(seed)
    mixing, offsets, scales = _plant(spec)
    drivers = _drivers(n_rows, spec.n_drivers, rng)
    clean = drivers @ mixing
    clean += spec.noise * rng.standard_normal(clean.shape)
    labels = np.zeros(n_rows, dtype=np.int8)
    n_anomalies = int(round(spec.anomaly_fraction * n_rows))
    if n_anomalies:
        rows = rng.choice(n_rows, size=n_anomalies, replace=False)
        _inject(clean, rows, rng)
        labels[rows] = 1
    features = (clean * scales + offsets).astype(np.float32)
    return SyntheticData(features, labels, feature_names(spec.n_features))


def _plant(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed mixing of drivers into sensors, and each sensor's physical offset and unit scale."""
    rng = np.random.default_rng(spec.plant_seed)
    mixing = rng.normal(size=(spec.n_drivers, spec.n_features))
    mixing /= np.linalg.norm(mixing, axis=0, keepdims=True)  # every sensor has unit spread
    offsets = rng.uniform(-50, 150, size=spec.n_features)
    scales = rng.uniform(0.5, 20, size=spec.n_features)
    return mixing, offsets, scales


def _drivers(n_rows: int, n_drivers: int, rng: np.random.Generator) -> np.ndarray:
    """Hidden drivers: slow cycles of different periods plus a mean-reverting random walk."""
    t = np.arange(n_rows)[:, None]
    periods = rng.uniform(50, 500, size=n_drivers)
    phases = rng.uniform(0, 2 * np.pi, size=n_drivers)
    cycles = np.sin(2 * np.pi * t / periods + phases)
    walk = np.zeros((n_rows, n_drivers))
    steps = 0.15 * rng.standard_normal((n_rows, n_drivers))
    for i in range(1, n_rows):
        walk[i] = 0.97 * walk[i - 1] + steps[i]
    return cycles + walk


def _inject(clean: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> None:
    """Half the anomalies are spikes on one or two sensors; half break a sensor's correlation
    with the others (its reading is replaced by an unrelated but plausible value)."""
    n_features = clean.shape[1]
    spread = clean.std(axis=0)
    for k, row in enumerate(rows):
        n_hit = rng.integers(1, 3)
        hit = rng.choice(n_features, size=n_hit, replace=False)
        if k % 2 == 0:
            sign = rng.choice([-1.0, 1.0], size=n_hit)
            clean[row, hit] += sign * rng.uniform(1.5, 4.0, size=n_hit) * spread[hit]
        else:
            for j in hit:
                # Another moment's reading of the same sensor: plausible on its own, but no longer
                # consistent with the other sensors. Kept at least one spread from the true value.
                reading = clean[rng.integers(len(clean)), j]
                if abs(reading - clean[row, j]) < spread[j]:
                    jump = rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 2.5) * spread[j]
                    reading = clean[row, j] + jump
                clean[row, j] = reading
