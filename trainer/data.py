"""Training data: a CSV or the built-in synthetic data, checked and split into train/validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datasentinel import synthetic
from datasentinel.trainer.csv_file import HeaderMode, data_line, read_frame
from datasentinel.trainer.errors import DataError
from datasentinel.trainer.scaling import robust_scaling
from datasentinel.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

# Below this a validation split and a quantile threshold mean nothing.
MIN_ROWS = 10
# Far below where squared errors overflow float32 (about 1e19 spreads); far above real data.
MAX_SPREADS = 1e12


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
    return read_csv(settings.data, settings.label_column, settings.csv_header)


def synthetic_dataset(n_rows: int, seed: int) -> Dataset:
    _check_row_count(n_rows, "synthetic data")
    data = synthetic.generate(n_rows, seed)
    source = f"synthetic ({n_rows} rows, seed {seed})"
    return Dataset(data.features, data.labels, data.feature_names, source)


def read_csv(path: Path, label_column: str | None = None, header: HeaderMode = "auto") -> Dataset:
    """Every column but ``label_column`` is a feature; all must be numeric and finite, and at
    least two must vary (see _check_varying)."""
    frame = read_frame(path, header)
    has_header = header != "no"
    if frame.empty:
        raise DataError(f"{path}: no data rows below the header; at least {MIN_ROWS} are needed")
    labels = None
    if label_column is not None:
        labels = _pop_labels(frame, label_column, path, has_header)
    features = _feature_matrix(frame, path, has_header)
    _check_row_count(len(features), str(path))
    names = [str(name) for name in frame.columns]
    _check_varying(features, names, path)
    _check_magnitudes(features, names, path, has_header)
    return Dataset(features, labels, names, str(path))


def split_dataset(dataset: Dataset, validation_fraction: float, seed: int) -> Split:
    """Seeded shuffle, then the first ``validation_fraction`` of rows become the validation split
    (at least one row on each side). Shuffled because CSV and synthetic rows are in time order."""
    n_rows = len(dataset.features)
    order = np.random.default_rng(seed).permutation(n_rows)
    n_validation = min(max(1, round(n_rows * validation_fraction)), n_rows - 1)
    return Split(dataset.take(order[n_validation:]), dataset.take(order[:n_validation]))


def _pop_labels(frame: pd.DataFrame, column: str, path: Path, has_header: bool) -> np.ndarray:
    if column not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise DataError(f"{path}: label column {column!r} not found; columns are: {columns}")
    position = list(frame.columns).index(column)
    labels = pd.to_numeric(frame.pop(column), errors="coerce")
    bad = ~labels.isin([0, 1]).to_numpy()
    if bad.any():
        line, fields = data_line(path, int(np.argmax(bad)), has_header)
        text = fields[position].strip() if position < len(fields) else ""
        raise DataError(
            f"{path}: label column {column!r} must hold only 0 (normal) or 1 (anomaly); "
            f"line {line} holds {_shown(text) if text else 'an empty cell'}"
        )
    if frame.columns.empty:
        raise DataError(f"{path}: no feature columns besides the label column {column!r}")
    return labels.to_numpy(dtype=np.int8)


def _feature_matrix(frame: pd.DataFrame, path: Path, has_header: bool) -> np.ndarray:
    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            _refuse_text(frame[name], path, has_header)
    features = frame.to_numpy(dtype=np.float32)
    # After the cast, so values beyond float32's range count as infinite too.
    bad = ~np.isfinite(features)
    if bad.any():
        _refuse_not_finite(frame, features, bad, path, has_header)
    return features


def _refuse_text(column: pd.Series, path: Path, has_header: bool) -> None:
    numbers = pd.to_numeric(column, errors="coerce")
    row = int(np.argmax((numbers.isna() & column.notna()).to_numpy()))
    line, _ = data_line(path, row, has_header)
    raise DataError(
        f"{path}: column {column.name!r} is not numeric (line {line}: {_shown(column.iloc[row])}); "
        "every feature must be a number: drop or encode the column, or name it with "
        "--label-column if it holds the 0/1 labels"
    )


def _refuse_not_finite(
    frame: pd.DataFrame, features: np.ndarray, bad: np.ndarray, path: Path, has_header: bool
) -> None:
    empty = np.isnan(features).all(axis=0)
    if empty.any():
        name = frame.columns[int(np.argmax(empty))]
        raise DataError(f"{path}: column {name!r} has no values at all; drop the column")
    row, col = (int(i) for i in np.argwhere(bad)[0])
    name = frame.columns[col]
    line, fields = data_line(path, row, has_header)
    if np.isnan(features[row, col]) and len(fields) < frame.shape[1]:
        raise DataError(
            f"{path}: line {line} has {len(fields)} fields but the header has {frame.shape[1]}; "
            "every line needs one value per column"
        )
    count = f"{int(bad.sum())} missing or infinite values, the first"
    what = "missing" if np.isnan(features[row, col]) else "infinite or beyond float32's range"
    raise DataError(
        f"{path}: {count} on line {line}, column {name!r} ({what}); "
        "fill in or drop rows with missing or infinite values"
    )


def _shown(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _check_varying(features: np.ndarray, names: list[str], path: Path) -> None:
    """An autoencoder scores a row by squeezing it through a code narrower than the row; with
    fewer than two varying features nothing can be narrowed: it learns to copy the one value,
    and its score is float rounding (which is also why ONNX and torch then disagree)."""
    varying = np.ptp(features, axis=0) > 0
    constant = [name for name, varies in zip(names, varying, strict=True) if not varies]
    if varying.sum() < 2:
        if len(names) == 1:
            which = "there is only 1 feature column"
        else:
            which = f"only {int(varying.sum())} of {len(names)} feature columns vary"
        raise DataError(
            f"{path}: {which}; an autoencoder needs at least 2 varying features to learn how "
            "they relate (for a single value, a threshold on it is the right detector)"
        )
    if constant:
        log.warning(
            "%s: %d constant feature column(s): %s; they cannot help find anomalies in training "
            "data, but a change in them will still score high",
            path,
            len(constant),
            ", ".join(constant[:10]),
        )


def _check_magnitudes(features: np.ndarray, names: list[str], path: Path, has_header: bool) -> None:
    """Refuses a value ``MAX_SPREADS`` or more of its column's spreads from the column's centre
    (the model's own scaling): its squared error overflows float32 to inf, and the exported
    graph turns inf into NaN. In practice such a value is a placeholder (1e30, -9.9e37) or a
    glitch. Column by column, so the check copies one column, not the matrix."""
    for col, name in enumerate(names):
        centre, scale = robust_scaling(features[:, col : col + 1])
        far = np.abs(features[:, col] - centre[0]) > MAX_SPREADS * scale[0]
        if far.any():
            row = int(np.argmax(far))
            line, _ = data_line(path, row, has_header)
            raise DataError(
                f"{path}: line {line}, column {name!r} holds {features[row, col]:.3g}, over "
                f"{MAX_SPREADS:.0e} times the column's typical spread from its median: a "
                "placeholder for a missing value? Fix or drop the row"
            )


def _check_row_count(n_rows: int, source: str) -> None:
    if n_rows < MIN_ROWS:
        raise DataError(
            f"{source}: {n_rows} data rows; at least {MIN_ROWS} are needed (and many more for "
            "a model worth serving)"
        )
