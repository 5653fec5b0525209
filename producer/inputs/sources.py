"""Where the vectors come from: the built-in synthetic data or a CSV file, cut into batches.

A source is loaded and checked whole before anything is sent, so a bad file fails fast with one
clear error instead of halfway through a stream. Row ids are the row's index in input order (the
file's data rows, blank lines not counted), also for rows that are not sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from datasentinel import synthetic
from datasentinel.producer.errors import InputMismatch, SourceError
from datasentinel.producer.inputs.csv_reader import (
    CsvTable,
    read_header,
    read_table,
    read_table_by_rows,
)

log = logging.getLogger(__name__)


class Batch(NamedTuple):
    """One message's worth of rows: ids (uint64), vectors (float32 [n, d]), labels or None."""

    ids: np.ndarray
    vectors: np.ndarray
    labels: np.ndarray | None


@dataclass(frozen=True)
class ModelSpec:
    """What the input must fit (from GetModelInfo): the features by name, in the order the
    vectors must follow, and whether the model fills in missing values (NaN) itself."""

    feature_names: list[str]
    input_dim: int
    accepts_missing: bool = False
    version: str = ""


_NO_ROWS = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Source:
    """All input rows, checked: little-endian float32 features in the model's order (NaN where
    a value is missing and the model fills it in), optional 0/1 labels, the key columns' raw
    text, and the rows that must not be sent (``rejected``, each with its reason)."""

    features: np.ndarray
    labels: np.ndarray | None
    feature_names: list[str] | None
    description: str
    keys: dict[str, np.ndarray] = field(default_factory=dict)  # column: raw text per row
    # Row ids not sent (a missing value the model cannot fill in, or an infinite one).
    rejected: np.ndarray = field(default_factory=lambda: _NO_ROWS)
    rejected_reasons: tuple[str, ...] = ()  # why, one per rejected row
    rejected_summary: tuple[str, ...] = ()  # per column: how many rows, the first line
    missing_cells: int = 0  # missing values sent as NaN (for a model that fills them in)

    @property
    def n_rows(self) -> int:
        return self.features.shape[0]

    @property
    def width(self) -> int:
        return self.features.shape[1]

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Batches of ``batch_size`` rows in input order (the last one may be shorter), the
        rejected rows left out; ids stay the rows' numbers in the input."""
        if not len(self.rejected):
            for start in range(0, self.n_rows, batch_size):
                stop = min(start + batch_size, self.n_rows)
                labels = None if self.labels is None else self.labels[start:stop]
                ids = np.arange(start, stop, dtype=np.uint64)
                yield Batch(ids, self.features[start:stop], labels)
            return
        keep = np.ones(self.n_rows, dtype=bool)
        keep[self.rejected] = False
        rows = np.flatnonzero(keep)
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            labels = None if self.labels is None else self.labels[chunk]
            yield Batch(chunk.astype(np.uint64), self.features[chunk], labels)


def synthetic_source(count: int, seed: int, model: ModelSpec | None = None) -> Source:
    """``count`` rows of the built-in data; its columns put in the model's order when the
    model's features are the same names in another order."""
    data = synthetic.generate(count, seed)
    features, names = data.features, list(data.feature_names)
    if model is not None and model.feature_names and sorted(model.feature_names) == sorted(names):
        features = features[:, [names.index(name) for name in model.feature_names]]
        names = list(model.feature_names)
    description = f"synthetic data ({count} rows, seed {seed})"
    return Source(_as_vectors(features), data.labels.astype(np.int8), names, description)


def csv_source(
    path: Path, label_column: str | None = None, model: ModelSpec | None = None
) -> Source:
    """The CSV's rows as vectors; ``label_column`` (if given) kept aside as labels.

    With a ``model`` (the app's case), feature columns are matched to the model's features by
    name, in any order, and the vectors follow the model's order; every other column is a key,
    kept as raw text. A missing feature column is an InputMismatch. A file without a header is
    matched by position, if it has exactly the model's width. A missing value is sent as NaN when
    the model fills it in; otherwise its row, like a row with an infinite value, is rejected (not
    sent, failed with a reason naming the column and line). Text in a feature column refuses the
    file (SourceError).

    Without a ``model`` every column but the label is a feature, in file order, and a missing or
    non-finite value refuses the file (nothing tells whether the model could take it)."""
    names, has_header = read_header(path)
    columns = _plan(path, names, has_header, label_column, model)
    table = read_table(path, label_column, columns.keys)
    try:
        return _csv_source(path, table, label_column, model, columns)
    except SourceError:
        if table.exact:
            raise
    # The fast reader keeps no raw text and its line numbers skip blank lines: say exactly where.
    table = read_table_by_rows(path, label_column, columns.keys)
    return _csv_source(path, table, label_column, model, columns)


@dataclass(frozen=True)
class _Columns:
    features: list  # the file's names (or positions) of the feature columns, in vector order
    keys: list[str]  # the other columns but the label, in file order


def _plan(
    path: Path, names: list, has_header: bool, label: str | None, model: ModelSpec | None
) -> _Columns:
    """Which columns are features (in the order the vectors must follow) and which are keys."""
    if label is not None and not has_header:
        raise SourceError(f"{path} has no header row, so it has no column {label!r}")
    if label is not None and label not in names:
        columns = ", ".join(map(str, names))
        raise SourceError(f"{path}: no label column {label!r} (columns: {columns})")
    rest = [name for name in names if name != label]
    if not rest:
        raise SourceError(f"{path}: no feature columns left besides the label column")
    if model is None or not model.feature_names or not has_header:
        if model is not None and not has_header:
            _check_width(path, len(rest), model)
            log.warning(
                "%s has no header row: its %d columns are taken as the model's features %s, "
                "in that order",
                path,
                len(rest),
                ", ".join(model.feature_names) or "(names unknown)",
            )
        return _Columns(rest, [])
    wanted = list(model.feature_names)
    if label in wanted:
        raise InputMismatch(f"{path}: the label column {label!r} is one of the model's features")
    missing = [name for name in wanted if name not in names]
    if missing:
        raise InputMismatch(
            f"{path} lacks the model's feature column(s) {_quoted(missing)} (model "
            f"{model.version or '?'} needs {_quoted(wanted)}); the file's columns: "
            f"{_quoted(names)}"
        )
    twice = sorted({name for name in wanted if names.count(name) > 1})
    if twice:
        raise SourceError(f"{path}: feature column(s) {_quoted(twice)} appear more than once")
    return _Columns(wanted, [name for name in rest if name not in wanted])


def _check_width(path: Path, width: int, model: ModelSpec) -> None:
    if width != model.input_dim:
        names = ", ".join(model.feature_names) or "names unknown"
        raise InputMismatch(
            f"{path} has no header row and {width} feature columns, but the engine's model "
            f"(version {model.version or '?'}) expects {model.input_dim} ({names}); add a header "
            "row naming the columns"
        )


def _quoted(names: list) -> str:
    return ", ".join(repr(str(name)) for name in names)


def _csv_source(
    path: Path,
    table: CsvTable,
    label_column: str | None,
    model: ModelSpec | None,
    columns: _Columns,
) -> Source:
    names = table.names
    labels = None if label_column is None else _labels(path, label_column, table)
    at = [names.index(name) for name in columns.features]
    _check_numeric(path, table, at)
    features = _as_vectors(table.values[:, at])
    feature_names = [str(name) for name in columns.features]
    keys = {name: table.texts[names.index(name)] for name in columns.keys}
    description = f"{path} ({len(features)} rows)"
    common = dict(keys=keys, description=description, labels=labels)
    named = feature_names if table.has_header else None
    finite = np.isfinite(features)
    if finite.all():
        return Source(features, feature_names=named, **common)
    if model is None:
        _refuse_non_finite(path, features, feature_names, table.lines)
    missing = np.isnan(features)
    fill = model.accepts_missing
    # Columns named as a person knows them: a headerless file's by the model's feature names.
    said = feature_names if named or not model.feature_names else list(model.feature_names)
    bad = ~finite & ~missing if fill else ~finite
    rejected = np.flatnonzero(bad.any(axis=1))
    reasons = tuple(
        _rejection(bad[row], missing[row], said, int(table.lines[row])) for row in rejected.tolist()
    )
    sent_missing = int(np.count_nonzero(missing)) if fill else 0
    return Source(
        features,
        feature_names=named,
        rejected=rejected,
        rejected_reasons=reasons,
        rejected_summary=_rejection_summary(bad, missing, said, table.lines),
        missing_cells=sent_missing,
        **common,
    )


def _rejection_summary(
    bad: np.ndarray, missing: np.ndarray, names: list[str], lines: np.ndarray
) -> tuple[str, ...]:
    """Per feature column: how many rows were not sent for a missing or an infinite value in it,
    and the first one's line."""
    notes = []
    for kind, mask in (
        ("a missing value", bad & missing),
        ("an infinite or out-of-range value", bad & ~missing),
    ):
        for j in np.flatnonzero(mask.any(axis=0)).tolist():
            rows = np.flatnonzero(mask[:, j])
            notes.append(
                f"{len(rows)} with {kind} in {names[j]!r} (first on line {lines[rows[0]]})"
            )
    return tuple(notes)


def _rejection(bad: np.ndarray, missing: np.ndarray, names: list[str], line: int) -> str:
    """Why a row is not sent: its missing (the model does not fill them in) or infinite values."""
    empty = [names[j] for j in np.flatnonzero(bad & missing)]
    infinite = [names[j] for j in np.flatnonzero(bad & ~missing)]
    parts = []
    if empty:
        parts.append(
            f"missing value in {_column_s(empty)} on line {line} (the model does not fill in "
            "missing values)"
        )
    if infinite:
        parts.append(f"infinite or out-of-range value in {_column_s(infinite)} on line {line}")
    return "not sent: " + "; ".join(parts)


def _column_s(names: list[str]) -> str:
    return f"column {names[0]!r}" if len(names) == 1 else f"columns {_quoted(names)}"


def open_source(
    csv: Path | None,
    label_column: str | None,
    count: int,
    seed: int,
    model: ModelSpec | None = None,
) -> Source:
    if csv is None:
        return synthetic_source(count, seed, model)
    return csv_source(csv, label_column, model)


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


def _refuse_non_finite(path: Path, features: np.ndarray, names: list, lines: np.ndarray) -> None:
    finite = np.isfinite(features)
    row, col = (int(i[0]) for i in np.nonzero(~finite))
    count = int((~finite).sum())
    raise SourceError(
        f"{path}: {count} missing or non-finite value(s) (float32), the first in column "
        f"{names[col]!r} on line {lines[row]}; the engine rejects them"
    )


def _as_vectors(values: np.ndarray) -> np.ndarray:
    """Little-endian float32, C-contiguous: the byte layout RawVectors carries. Values beyond
    float32's range become infinite (and their rows are not sent)."""
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(values, dtype="<f4")
