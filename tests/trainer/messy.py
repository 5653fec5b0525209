"""A new user's sensor log, as a test table: ISO timestamps, a text machine id, 12 correlated
sensors (3 hidden signals mixed, each sensor in its own units), a 0/1 label, a few empty cells,
an epoch-seconds column and a row-index column. Tests drop the columns they do not want."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SENSORS = [f"sensor_{i:02d}" for i in range(1, 13)]
START = pd.Timestamp("2026-01-05T10:00:00Z")


def sensor_rows(n_rows: int, seed: int = 0) -> np.ndarray:
    """``[n_rows, 12]`` float64: three hidden signals mixed into twelve sensors, a little noise,
    each sensor with its own offset and scale."""
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(n_rows, 3))
    mixing = np.random.default_rng(1234).normal(size=(3, 12))  # the same plant for every seed
    offsets = np.linspace(20, 900, 12)
    scales = np.linspace(0.5, 40, 12)
    return offsets + scales * (hidden @ mixing + 0.05 * rng.normal(size=(n_rows, 12)))


def messy_frame(n_rows: int = 400, seed: int = 0, empty_cells: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    sensors = sensor_rows(n_rows, seed)
    sensors[rng.integers(0, n_rows, empty_cells), rng.integers(0, 12, empty_cells)] = np.nan
    frame = pd.DataFrame(sensors, columns=SENSORS)
    times = START + pd.to_timedelta(np.arange(n_rows), unit="min")
    frame.insert(0, "timestamp", times.strftime("%Y-%m-%dT%H:%M:%SZ"))
    frame.insert(1, "machine_id", rng.choice(["press-A", "press-B", "lathe-7"], n_rows))
    frame["label"] = (rng.random(n_rows) < 0.02).astype(int)
    frame["recorded"] = (times - pd.Timestamp("1970-01-01T00:00:00Z")) // pd.Timedelta("1s")
    frame["row"] = np.arange(n_rows)
    return frame


def write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
