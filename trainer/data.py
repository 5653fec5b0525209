"""Training data: a CSV or the built-in synthetic data, checked and split into train/validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datasentinel import synthetic
from trainer.errors import DataError
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

# Below this a validation split and a quantile threshold mean nothing.
MIN_ROWS = 10


@dataclass(frozen=True)
class Dataset:
    """Rows of features (float32 [n, d]), optional labels (int8 [n], 1 = anomaly), their names."""

    features: np.ndarray
    labels: np.ndarray | None
    feature_names: list[str]
    source: str

    def take(self, rows: np.ndarray) -> Dataset:
        labels = None if self.labels is None else self.labels[rows]
        return Dataset(self.features[rows], labels, self.feature_names, self.source)


@dataclass(frozen=True)
class Split:
    train: Dataset
    validation: Dataset


def load_dataset(settings: TrainerSettings) -> Dataset:
    """The CSV named by ``settings.data``, or synthetic data when there is none."""
    if settings.data is None:
        if settings.label_column is not None:
            log.warning("--label-column is ignored: the synthetic data brings its own labels")
        return synthetic_dataset(settings.synthetic_rows, settings.seed)
    return read_csv(settings.data, settings.label_column)


def synthetic_dataset(n_rows: int, seed: int) -> Dataset:
    _check_row_count(n_rows, "synthetic data")
    data = synthetic.generate(n_rows, seed)
    source = f"synthetic ({n_rows} rows, seed {seed})"
    return Dataset(data.features, data.labels, data.feature_names, source)


def read_csv(path: Path, label_column: str | None = None) -> Dataset:
    """Every column but ``label_column`` is a feature; all must be numeric and finite."""
    frame = _read_frame(path)
    labels = _pop_labels(frame, label_column, path) if label_column is not None else None
    features = _feature_matrix(frame, path)
    _check_row_count(len(features), str(path))
    return Dataset(features, labels, [str(name) for name in frame.columns], str(path))


def split_dataset(dataset: Dataset, validation_fraction: float, seed: int) -> Split:
    """Seeded shuffle, then the first ``validation_fraction`` of rows become the validation split
    (at least one row on each side). Shuffled because CSV and synthetic rows are in time order."""
    n_rows = len(dataset.features)
    order = np.random.default_rng(seed).permutation(n_rows)
    n_validation = min(max(1, round(n_rows * validation_fraction)), n_rows - 1)
    return Split(dataset.take(order[n_validation:]), dataset.take(order[:n_validation]))


def _read_frame(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise DataError(f"{path}: not a readable CSV ({first_line})") from None
    return frame


def _pop_labels(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    if column not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise DataError(f"{path}: label column {column!r} not found; columns are: {columns}")
    labels = pd.to_numeric(frame.pop(column), errors="coerce")
    if not labels.isin([0, 1]).all():
        raise DataError(f"{path}: label column {column!r} must hold only 0 (normal) or 1 (anomaly)")
    return labels.to_numpy(dtype=np.int8)


def _feature_matrix(frame: pd.DataFrame, path: Path) -> np.ndarray:
    if frame.columns.empty:
        raise DataError(f"{path}: no feature columns")
    text = [str(name) for name in frame.columns if not pd.api.types.is_numeric_dtype(frame[name])]
    if text:
        raise DataError(f"{path}: feature columns must be numeric; not numeric: {', '.join(text)}")
    features = frame.to_numpy(dtype=np.float32)
    # After the cast, so values beyond float32's range count as infinite too.
    bad = ~np.isfinite(features)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{path}: {int(bad.sum())} missing or infinite feature values "
            f"(first in column {frame.columns[col]!r}, data row {row + 1})"
        )
    return features


def _check_row_count(n_rows: int, source: str) -> None:
    if n_rows < MIN_ROWS:
        raise DataError(f"{source}: {n_rows} rows; at least {MIN_ROWS} are needed")
