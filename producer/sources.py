"""Where the vectors come from: the built-in synthetic data or a CSV file, cut into batches.

A source is loaded and checked whole before anything is sent, so a bad file fails fast with one
clear error instead of halfway through a stream. Row ids are the row's index in input order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from datasentinel import synthetic
from producer.errors import SourceError


class Batch(NamedTuple):
    """One message's worth of rows: ids (uint64), vectors (float32 [n, d]), labels or None."""

    ids: np.ndarray
    vectors: np.ndarray
    labels: np.ndarray | None


@dataclass(frozen=True)
class Source:
    """All input rows, checked: finite little-endian float32 features, optional 0/1 labels."""

    features: np.ndarray
    labels: np.ndarray | None
    feature_names: list[str] | None
    description: str

    @property
    def n_rows(self) -> int:
        return self.features.shape[0]

    @property
    def width(self) -> int:
        return self.features.shape[1]

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Consecutive batches of ``batch_size`` rows (the last one may be shorter)."""
        for start in range(0, self.n_rows, batch_size):
            stop = min(start + batch_size, self.n_rows)
            labels = None if self.labels is None else self.labels[start:stop]
            ids = np.arange(start, stop, dtype=np.uint64)
            yield Batch(ids, self.features[start:stop], labels)


def synthetic_source(count: int, seed: int) -> Source:
    data = synthetic.generate(count, seed)
    features = _as_vectors(data.features)
    description = f"synthetic data ({count} rows, seed {seed})"
    return Source(features, data.labels.astype(np.int8), data.feature_names, description)


def csv_source(path: Path, label_column: str | None = None) -> Source:
    """Numeric columns of ``path`` as vectors; ``label_column`` (if given) kept aside as labels."""
    frame, has_header = _read_csv(path)
    first_line = 2 if has_header else 1  # the file line of row 0, for error messages
    labels = None
    if label_column is not None and not has_header:
        raise SourceError(f"{path} has no header row, so it has no column {label_column!r}")
    if label_column is not None:
        if label_column not in frame.columns:
            columns = ", ".join(map(str, frame.columns))
            raise SourceError(f"{path}: no label column {label_column!r} (columns: {columns})")
        labels = _labels(path, frame.pop(label_column), first_line)
    if frame.shape[1] == 0:
        raise SourceError(f"{path}: no feature columns left besides the label column")
    features = _as_vectors(_numeric(path, frame, first_line).to_numpy(dtype=np.float64))
    _check_finite(path, features, list(frame.columns), first_line)
    names = [str(c) for c in frame.columns] if has_header else None
    return Source(features, labels, names, f"{path} ({len(frame)} rows)")


def open_source(csv: Path | None, label_column: str | None, count: int, seed: int) -> Source:
    if csv is None:
        return synthetic_source(count, seed)
    return csv_source(csv, label_column)


def paced(
    batches: Iterable[Batch],
    rate: float,
    sleep: Callable[[float], bool | None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Batch]:
    """Holds the average rate to ``rate`` vectors/s (0: no limit). ``sleep`` may be an
    ``Event.wait``: when it returns True (the stream ended), the batches stop."""
    if rate <= 0:
        yield from batches
        return
    start = clock()
    sent = 0
    for batch in batches:
        delay = start + sent / rate - clock()
        if delay > 0 and sleep(delay):
            return
        yield batch
        sent += len(batch.ids)


def _read_csv(path: Path) -> tuple[pd.DataFrame, bool]:
    """The rows, and whether the file has a header (a first line made only of numbers is data)."""
    try:
        frame = pd.read_csv(path)
        has_header = not all(_is_number(name) for name in frame.columns)
        if not has_header:
            frame = pd.read_csv(path, header=None)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    except pd.errors.EmptyDataError as e:
        raise SourceError(f"{path} is empty: expected a header row and rows of numbers") from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise SourceError(f"{path} is not a readable CSV: {e}") from e
    if len(frame) == 0:
        raise SourceError(f"{path} has a header but no rows")
    return frame, has_header


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def _numeric(path: Path, frame: pd.DataFrame, first_line: int) -> pd.DataFrame:
    """The frame as numbers; or an error naming the first bad value of each non-numeric column
    with its line in the file."""
    bad = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            continue
        coerced = pd.to_numeric(column, errors="coerce")
        offending = column[coerced.isna() & column.notna()]
        if len(offending) == 0:  # numbers stored as text with gaps
            continue
        row = int(offending.index[0])
        bad.append(f"{name!r} ({offending.iloc[0]!r} on line {row + first_line})")
    if bad:
        raise SourceError(f"{path}: non-numeric feature columns: {', '.join(bad)}")
    return frame.apply(pd.to_numeric)


def _labels(path: Path, column: pd.Series, first_line: int) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    ok = values.isin([0, 1])
    if not ok.all():
        row = int(np.flatnonzero(~ok.to_numpy())[0])
        raise SourceError(
            f"{path}: label column {column.name!r} must hold 0 or 1, "
            f"found {column.iloc[row]!r} on line {row + first_line}"
        )
    return values.to_numpy(dtype=np.int8)


def _check_finite(path: Path, features: np.ndarray, names: list, first_line: int) -> None:
    finite = np.isfinite(features)
    if finite.all():
        return
    row, col = (int(i[0]) for i in np.nonzero(~finite))
    count = int((~finite).sum())
    raise SourceError(
        f"{path}: {count} missing or non-finite value(s) (float32), the first in column "
        f"{names[col]!r} on line {row + first_line}; the engine rejects them"
    )


def _as_vectors(values: np.ndarray) -> np.ndarray:
    """Little-endian float32, C-contiguous: the byte layout RawVectors carries."""
    return np.ascontiguousarray(values, dtype="<f4")
