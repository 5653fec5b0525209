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

from datasentinel import synthetic
from datasentinel.producer.csv_input import CsvTable, read_table, read_table_by_rows
from datasentinel.producer.errors import SourceError


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
    table = read_table(path, label_column)
    try:
        return _csv_source(path, table, label_column)
    except SourceError:
        if table.exact:
            raise
    # The fast reader keeps no raw text and its line numbers skip blank lines: say exactly where.
    return _csv_source(path, read_table_by_rows(path, label_column), label_column)


def _csv_source(path: Path, table: CsvTable, label_column: str | None) -> Source:
    names = table.names
    keep = list(range(len(names)))
    labels = None
    if label_column is not None and not table.has_header:
        raise SourceError(f"{path} has no header row, so it has no column {label_column!r}")
    if label_column is not None:
        if label_column not in names:
            columns = ", ".join(map(str, names))
            raise SourceError(f"{path}: no label column {label_column!r} (columns: {columns})")
        keep.remove(names.index(label_column))
        labels = _labels(path, label_column, table)
    if not keep:
        raise SourceError(f"{path}: no feature columns left besides the label column")
    _check_numeric(path, table, keep)
    features = _as_vectors(table.values[:, keep])
    feature_names = [names[j] for j in keep]
    _check_finite(path, features, feature_names, table.lines)
    return Source(
        features,
        labels,
        [str(n) for n in feature_names] if table.has_header else None,
        f"{path} ({len(features)} rows)",
    )


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


def _check_numeric(path: Path, table: CsvTable, columns: list[int]) -> None:
    """An error naming the first bad value of each non-numeric feature column, with its line."""
    bad = [
        f"{table.names[j]!r} ({cell!r} on line {line})"
        for j in columns
        if j in table.not_numeric
        for cell, line in [table.not_numeric[j]]
    ]
    if bad:
        raise SourceError(f"{path}: non-numeric feature columns: {', '.join(bad)}")


def _labels(path: Path, name: str, table: CsvTable) -> np.ndarray:
    values = table.values[:, table.names.index(name)]
    bad = np.flatnonzero(~np.isin(values, (0, 1)))
    if len(bad):
        row = int(bad[0])
        found = table.text[row] if table.text is not None else values[row]
        raise SourceError(
            f"{path}: label column {name!r} must hold 0 or 1, "
            f"found {found!r} on line {table.lines[row]}"
        )
    return values.astype(np.int8)


def _check_finite(path: Path, features: np.ndarray, names: list, lines: np.ndarray) -> None:
    finite = np.isfinite(features)
    if finite.all():
        return
    row, col = (int(i[0]) for i in np.nonzero(~finite))
    count = int((~finite).sum())
    raise SourceError(
        f"{path}: {count} missing or non-finite value(s) (float32), the first in column "
        f"{names[col]!r} on line {lines[row]}; the engine rejects them"
    )


def _as_vectors(values: np.ndarray) -> np.ndarray:
    """Little-endian float32, C-contiguous: the byte layout RawVectors carries."""
    return np.ascontiguousarray(values, dtype="<f4")
