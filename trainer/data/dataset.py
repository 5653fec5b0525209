"""Training data: a CSV or the built-in synthetic data, checked and split into train/validation.

A CSV's columns each get one role: feature, key (kept with each row, never a feature: ids,
timestamps, entities), ignored, or the label. Text and date/time columns become keys by
themselves. A numeric column that looks like a row index, a timestamp or a label is never
silently a feature: it is refused with the flags that say what it is (see _suspicion)."""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from datasentinel import synthetic
from datasentinel.model_config import Columns
from datasentinel.trainer.data.csv_file import HeaderMode, data_line, lines, read_frame
from datasentinel.trainer.detector.scaling import robust_scaling
from datasentinel.trainer.errors import DataError
from datasentinel.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

# Below this a validation split and a quantile threshold mean nothing.
MIN_ROWS = 10
# Far below where squared errors overflow float32 (about 1e19 spreads); far above real data.
MAX_SPREADS = 1e12

# Column names that say "label" (compared lower-case): never silently a feature.
LABEL_NAMES = frozenset(
    "label labels target anomaly is_anomaly anomalous class y outlier is_outlier fraud "
    "is_fraud ground_truth".split()
)
# Column names that say "time" (lower-case; also any ending in _at or _time).
TIME_NAMES = frozenset("time timestamp ts date datetime epoch".split())
# Epoch values of the years 2000 to 2100 in each unit: (unit, first, last).
_EPOCH_2000, _EPOCH_2100 = 946_684_800, 4_102_444_800
EPOCH_RANGES = tuple(
    (unit, _EPOCH_2000 * factor, _EPOCH_2100 * factor)
    for unit, factor in (("seconds", 1), ("milliseconds", 10**3), ("microseconds", 10**6),
                         ("nanoseconds", 10**9))
)  # fmt: skip
# ISO 8601 dates and date-times: 2026-01-05, 2026-01-05T10:00:00Z, "2026-01-05 10:00", ...
ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?)?"
)


@dataclass(frozen=True)
class Dataset:
    """Rows of features (float32 [n, d], NaN = missing), optional labels (int8 [n], 1 =
    anomaly), the features' names, and the roles of the file's other columns."""

    features: np.ndarray
    labels: np.ndarray | None
    feature_names: list[str]
    source: str
    columns: Columns = field(default_factory=Columns)

    def take(self, rows: np.ndarray) -> Dataset:
        labels = None if self.labels is None else self.labels[rows]
        return Dataset(self.features[rows], labels, self.feature_names, self.source, self.columns)


@dataclass(frozen=True)
class Split:
    train: Dataset
    validation: Dataset


def load_dataset(settings: TrainerSettings) -> Dataset:
    """The CSV named by ``settings.data``, or synthetic data when there is none."""
    if settings.data is None:
        if settings.label_column is not None:
            log.warning("--label-column is ignored: the synthetic data brings its own labels")
        if settings.key_columns or settings.ignore_columns or settings.feature_columns:
            log.warning("--key-columns, --ignore-columns and --feature-columns are ignored: "
                        "the synthetic data has only features")  # fmt: skip
        return synthetic_dataset(settings.synthetic_rows, settings.seed)
    return read_csv(
        settings.data,
        settings.label_column,
        settings.csv_header,
        key_columns=settings.key_columns,
        ignore_columns=settings.ignore_columns,
        feature_columns=settings.feature_columns,
    )


def synthetic_dataset(n_rows: int, seed: int) -> Dataset:
    _check_row_count(n_rows, "synthetic data")
    data = synthetic.generate(n_rows, seed)
    source = f"synthetic ({n_rows} rows, seed {seed})"
    return Dataset(data.features, data.labels, data.feature_names, source)


def read_csv(
    path: Path,
    label_column: str | None = None,
    header: HeaderMode = "auto",
    *,
    key_columns: list[str] | None = None,
    ignore_columns: list[str] | None = None,
    feature_columns: list[str] | None = None,
) -> Dataset:
    """The features are ``feature_columns`` when given (every other column but the label and
    ``ignore_columns`` is then a key), else every column that is not a key, ignored or the
    label, where text and date/time columns are keys too and a numeric column that looks like
    a row index, a timestamp or a label is refused (_suspicion). Features must be numeric, and
    finite or missing (empty); at least two must vary (see _check_varying)."""
    frame = read_frame(path, header)
    has_header = header != "no"
    if frame.empty:
        raise DataError(f"{path}: no data rows below the header; at least {MIN_ROWS} are needed")
    frame.columns = [str(name) for name in frame.columns]
    keys, ignored = list(key_columns or []), list(ignore_columns or [])
    _check_named_columns(frame, path, label_column, keys, ignored, feature_columns)
    position = {name: i for i, name in enumerate(frame.columns)}
    labels = None
    if label_column is not None:
        labels = _pop_labels(frame, label_column, path, has_header, position)
    names = _feature_names(frame, path, has_header, keys, ignored, feature_columns)
    features = _feature_matrix(frame, names, path, has_header, len(position))
    if feature_columns is None:  # named features are trusted
        _refuse_suspects(frame, names, path)
    _check_row_count(len(features), str(path))
    _check_varying(features, names, path)
    _check_magnitudes(features, names, path, has_header)
    columns = Columns(
        keys=[name for name in frame.columns if name in keys],
        ignored=[name for name in position if name in ignored],
        label=label_column,
    )
    return Dataset(features, labels, names, str(path), columns)


def split_dataset(dataset: Dataset, validation_fraction: float, seed: int) -> Split:
    """Seeded shuffle, then the first ``validation_fraction`` of rows become the validation split
    (at least one row on each side). Shuffled because CSV and synthetic rows are in time order."""
    n_rows = len(dataset.features)
    order = np.random.default_rng(seed).permutation(n_rows)
    n_validation = min(max(1, round(n_rows * validation_fraction)), n_rows - 1)
    return Split(dataset.take(order[n_validation:]), dataset.take(order[:n_validation]))


def _check_named_columns(
    frame: pd.DataFrame,
    path: Path,
    label_column: str | None,
    keys: list[str],
    ignored: list[str],
    feature_columns: list[str] | None,
) -> None:
    """Every name in the column lists is a column, and in only one role."""
    columns = ", ".join(frame.columns)
    lists = {"--key-columns": keys, "--ignore-columns": ignored,
             "--feature-columns": feature_columns or []}  # fmt: skip
    role: dict[str, str] = {} if label_column is None else {label_column: "--label-column"}
    for flag, names in lists.items():
        for name in names:
            if name not in frame.columns:
                raise DataError(
                    f"{path}: {flag} names {name!r}, which is not a column; columns are: {columns}"
                )
            if name in role and role[name] != flag:
                raise DataError(
                    f"{path}: column {name!r} is named by both {role[name]} and {flag}; give "
                    "each column one role"
                )
            role[name] = flag


def _pop_labels(
    frame: pd.DataFrame, column: str, path: Path, has_header: bool, position: dict[str, int]
) -> np.ndarray:
    if column not in frame.columns:
        columns = ", ".join(map(str, frame.columns))
        raise DataError(f"{path}: label column {column!r} not found; columns are: {columns}")
    labels = pd.to_numeric(frame.pop(column), errors="coerce")
    bad = ~labels.isin([0, 1]).to_numpy()
    if bad.any():
        line, fields = data_line(path, int(np.argmax(bad)), has_header)
        at = position[column]
        text = fields[at].strip() if at < len(fields) else ""
        raise DataError(
            f"{path}: label column {column!r} must hold only 0 (normal) or 1 (anomaly); "
            f"line {line} holds {_shown(text) if text else 'an empty cell'}"
        )
    if frame.columns.empty:
        raise DataError(f"{path}: no feature columns besides the label column {column!r}")
    return labels.to_numpy(dtype=np.int8)


def _feature_names(
    frame: pd.DataFrame,
    path: Path,
    has_header: bool,
    keys: list[str],
    ignored: list[str],
    feature_columns: list[str] | None,
) -> list[str]:
    """The feature columns, in file order; ``keys`` gains the columns that become keys."""
    candidates = [name for name in frame.columns if name not in keys and name not in ignored]
    if feature_columns is not None:
        keys += [name for name in candidates if name not in feature_columns]
        names = [name for name in candidates if name in feature_columns]
        for name in names:
            if not pd.api.types.is_numeric_dtype(frame[name]):
                _refuse_text(frame[name], path, has_header)
        return names
    automatic: list[str] = []
    for name in candidates:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            kind = _key_kind(frame[name], path, has_header)
            keys.append(name)
            automatic.append(f"{name} ({kind})")
    if automatic:
        log.info(
            "%s: %d column(s) kept with each row as keys, not features: %s (to train on one, "
            "name the features with --feature-columns)",
            path,
            len(automatic),
            ", ".join(automatic),
        )
    names = [name for name in candidates if name not in keys]
    if not names:
        raise DataError(
            f"{path}: no numeric feature columns left (keys: {', '.join(keys) or 'none'}; "
            f"ignored: {', '.join(ignored) or 'none'}); every feature must be a number"
        )
    return names


def _refuse_suspects(frame: pd.DataFrame, names: list[str], path: Path) -> None:
    """Refuses the first feature column that looks like a row index, a timestamp or a label."""
    suspects = [(name, why) for name in names if (why := _suspicion(name, frame[name]))]
    if suspects:
        name, why = suspects[0]
        more = "" if len(suspects) == 1 else f" (and so do {', '.join(n for n, _ in suspects[1:])})"
        label = f"--label-column {name} if it holds the 0/1 labels, " if "label" in why else ""
        raise DataError(
            f"{path}: column {name!r} {why}{more}, so it is not used as a feature unless you "
            f"say so: {label}--key-columns {name} to keep it with each row, --ignore-columns "
            f"{name} to drop it, or --feature-columns with it among the features to train on "
            "it anyway"
        )


def _key_kind(column: pd.Series, path: Path, has_header: bool) -> str:
    """'date/time' or 'text' for a column that is not numeric; a column of numbers with a few
    words among them is a typo, not a key, and is refused."""
    present = column.dropna().astype(str).str.strip()
    present = present[present != ""]
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().mean() > 0.5:
        _refuse_text(column, path, has_header)
    if len(present) and bool(present.str.fullmatch(ISO_DATE).all()):
        return "date/time"
    return "text"


def _suspicion(name: str, column: pd.Series) -> str | None:
    """Why a numeric column should not be a feature unless the user says so, or None: its name
    says it is a label; its values are epoch times of the years 2000-2100 in one unit that are
    in order or under a time-like name; or they count rows (whole numbers, all different, in
    order)."""
    lower = name.lower()
    if lower in LABEL_NAMES:
        return "is named like a label"
    values = column.to_numpy(dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return None
    steps = np.diff(values)
    ascending = bool((steps >= 0).all())
    time_name = lower in TIME_NAMES or lower.endswith(("_at", "_time"))
    low, high = values.min(), values.max()
    for unit, first, last in EPOCH_RANGES:
        if first <= low and high <= last and (ascending or time_name):
            order = "in order" if ascending else f"named {name!r}"
            return f"looks like a timestamp (epoch {unit} of the years 2000-2100, {order})"
    whole = bool((values == np.round(values)).all())
    if whole and ((steps > 0).all() or (steps < 0).all()):
        return "looks like a row index (whole numbers, all different, in order)"
    return None


def _feature_matrix(
    frame: pd.DataFrame, names: list[str], path: Path, has_header: bool, n_columns: int
) -> np.ndarray:
    """The features as float32; NaN (empty cells) stays for the pipeline to fill in. Refuses a
    row shorter than the header, a feature without values, and infinite values."""
    if frame.isna().to_numpy().any():
        _check_row_lengths(path, n_columns, has_header)
    for name in names:
        if frame[name].isna().all():
            raise DataError(
                f"{path}: column {name!r} has no values at all; drop it with --ignore-columns "
                f"{name}"
            )
    features = frame[names].to_numpy(dtype=np.float32)
    # After the cast, so values beyond float32's range count as infinite too.
    bad = np.isinf(features)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        line, _ = data_line(path, row, has_header)
        raise DataError(
            f"{path}: {int(bad.sum())} infinite values, the first on line {line}, column "
            f"{names[col]!r} (infinite or beyond float32's range); fix or drop those rows"
        )
    return features


def _check_row_lengths(path: Path, n_names: int, has_header: bool) -> None:
    """pandas reads a row shorter than the header as missing values at its end: refused."""
    try:
        rows = lines(path)
        if has_header:
            next(rows, None)
        for number, fields in rows:
            if len(fields) < n_names:
                raise DataError(
                    f"{path}: line {number} has {len(fields)} fields but the header has "
                    f"{n_names}; every line needs one value per column"
                )
    except (csv.Error, OSError, UnicodeDecodeError):
        pass  # pandas read it; nothing more to say


def _refuse_text(column: pd.Series, path: Path, has_header: bool) -> None:
    numbers = pd.to_numeric(column, errors="coerce")
    row = int(np.argmax((numbers.isna() & column.notna()).to_numpy()))
    line, _ = data_line(path, row, has_header)
    raise DataError(
        f"{path}: column {column.name!r} is not numeric (line {line}: {_shown(column.iloc[row])}); "
        "every feature must be a number: fix the cell, or keep the column with each row "
        "(--key-columns) or drop it (--ignore-columns)"
    )


def _shown(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def _check_varying(features: np.ndarray, names: list[str], path: Path) -> None:
    """An autoencoder scores a row by squeezing it through a code narrower than the row; with
    fewer than two varying features nothing can be narrowed: it learns to copy the one value,
    and its score is float rounding (which is also why ONNX and torch then disagree)."""
    with np.errstate(invalid="ignore"):
        varying = np.nanmax(features, axis=0) > np.nanmin(features, axis=0)
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
        column = features[:, col]
        centre, scale = robust_scaling(column[~np.isnan(column), None])
        with np.errstate(invalid="ignore"):
            far = np.abs(column - centre[0]) > MAX_SPREADS * scale[0]
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
