"""Reads a CSV of numbers with the standard library's csv module and numpy (no pandas: the producer
image stays small).

Two ways, the same answer: numpy's C parser (``np.loadtxt``) reads a clean file fast; a file it
refuses, or one holding a missing or non-finite value, is read again row by row with the csv
module, which keeps each row's line in the file so that errors can point at it, and tells missing
values (empty, ``NA``, ``nan``, ...: NaN, as pandas reads them) from text that is not a number.
Columns named in ``text_columns`` (keys such as a timestamp or a machine id) are kept as their raw
text and never parsed as numbers; a file with such columns is always read row by row.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasentinel.producer.errors import SourceError
from datasentinel.text import is_number

# pandas' default missing-value markers, so files read the same as they did with pandas.
MISSING = frozenset(
    "#N/A|#N/A N/A|#NA|-1.#IND|-1.#QNAN|-NaN|-nan|1.#IND|1.#QNAN|<NA>|N/A|NA|NULL|NaN|None|n/a|"
    "nan|null".split("|")
) | {""}
CHUNK_ROWS = 8192  # rows parsed at once: bounds the Python strings held at any time


@dataclass
class CsvTable:
    """The file's columns: ``names`` are the header's, or 0, 1, ... when it has none."""

    names: list
    has_header: bool
    values: np.ndarray  # float64 [rows, columns], NaN where a cell is missing or not a number
    lines: np.ndarray  # the file line of each row
    text: list[str] | None  # the raw cells of the ``keep_text`` column (labels), when asked
    texts: dict[int, np.ndarray] = field(default_factory=dict)  # column: raw cells (str array)
    not_numeric: dict[int, tuple[str, int]] = field(default_factory=dict)  # column: (cell, line)
    exact: bool = True  # False from the fast reader: no text kept, and lines skip blank ones


def read_table(
    path: Path, keep_text: str | None = None, text_columns: Collection[str] = ()
) -> CsvTable:
    """The table in ``path``; a first line made only of numbers is data, not a header.
    ``keep_text`` names a header column whose raw cells are kept too (only on the slow path);
    ``text_columns`` name header columns kept only as raw text (``texts``; NaN in ``values``)."""
    fast = None if text_columns else _fast(path)
    return fast or read_table_by_rows(path, keep_text, text_columns)


def read_table_by_rows(
    path: Path, keep_text: str | None = None, text_columns: Collection[str] = ()
) -> CsvTable:
    """``read_table`` row by row: exact lines, missing values told from text, ``keep_text``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return _read(path, csv.reader(f), keep_text, text_columns)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    except (csv.Error, UnicodeDecodeError) as e:
        raise SourceError(f"{path} is not a readable CSV: {e}") from e


def read_header(path: Path) -> tuple[list, bool]:
    """(column names, has_header) from the first non-blank line: names are 0, 1, ... when that
    line is only numbers (then it is data). Raises SourceError for an unreadable or empty file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = next((row for row in csv.reader(f) if row), None)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    except (csv.Error, UnicodeDecodeError) as e:
        raise SourceError(f"{path} is not a readable CSV: {e}") from e
    if first is None:
        raise SourceError(f"{path} is empty: expected a header row and rows of numbers")
    has_header = not all(is_number(cell) for cell in first)
    return (list(first) if has_header else list(range(len(first)))), has_header


def _fast(path: Path) -> CsvTable | None:
    """The table when numpy's parser reads every row as finite numbers of the header's width;
    else None (the row-by-row reader then finds what is wrong, or reads what numpy would not)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            first = next((row for row in reader if row), None)
            header_lines = reader.line_num
        if first is None:
            return None
        has_header = not all(is_number(cell) for cell in first)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "input contained no data" and the like
            values = np.loadtxt(
                path,
                delimiter=",",
                quotechar='"',
                comments=None,
                dtype=np.float64,
                ndmin=2,
                skiprows=header_lines if has_header else 0,
                encoding="utf-8-sig",
            )
    except (OSError, ValueError, UnicodeDecodeError, csv.Error, Warning):
        return None
    if values.shape[1] != len(first) or len(values) == 0 or not np.isfinite(values).all():
        return None
    names = list(first) if has_header else list(range(len(first)))
    # Each row on one line (numpy's parser refuses the rest); blank lines are not counted.
    lines = np.arange(len(values)) + (header_lines + 1 if has_header else 1)
    return CsvTable(names, has_header, values, lines, None, exact=False)


def _read(path: Path, reader, keep_text: str | None, text_columns: Collection[str]) -> CsvTable:
    records = ((row, reader.line_num) for row in reader if row)  # blank lines skipped, as pandas
    first = next(records, None)
    if first is None:
        raise SourceError(f"{path} is empty: expected a header row and rows of numbers")
    has_header = not all(is_number(cell) for cell in first[0])
    names = list(first[0]) if has_header else list(range(len(first[0])))
    text_at = names.index(keep_text) if has_header and keep_text in names else None
    raw = [j for j, name in enumerate(names) if has_header and name in text_columns]
    numeric = [j for j in range(len(names)) if j not in raw]
    if not has_header:
        records = _chain(first, records)
    table = CsvTable(names, has_header, np.empty((0, len(names))), np.empty(0, np.int64), None)
    text: list[str] = []
    texts: dict[int, list[np.ndarray]] = {j: [] for j in raw}
    values, lines = [], []
    chunk: list[list[str]] = []
    chunk_lines: list[int] = []

    def take() -> None:
        values.append(_convert(chunk, chunk_lines, table.not_numeric, numeric))
        lines.extend(chunk_lines)
        if text_at is not None:
            text.extend(r[text_at] for r in chunk)
        for j, parts in texts.items():
            parts.append(np.array([r[j] for r in chunk], dtype=str))

    for row, line in records:
        if len(row) != len(names):
            raise SourceError(
                f"{path} is not a readable CSV: line {line} has {_fields(len(row))}, "
                f"{'the header' if has_header else 'line 1'} has {_fields(len(names))}"
            )
        chunk.append(row)
        chunk_lines.append(line)
        if len(chunk) == CHUNK_ROWS:
            take()
            chunk, chunk_lines = [], []
    if chunk:
        take()
    if not values:
        raise SourceError(f"{path} has a header but no rows")
    table.values = np.concatenate(values)
    table.lines = np.asarray(lines, dtype=np.int64)
    table.text = text if text_at is not None else None
    table.texts = {j: np.concatenate(parts) for j, parts in texts.items()}
    return table


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _chain(first, rest):
    yield first
    yield from rest


def _convert(
    rows: list[list[str]], lines: list[int], not_numeric: dict, numeric: list[int]
) -> np.ndarray:
    """The ``numeric`` columns of the rows as float64 (the other columns NaN); cells that are not
    numbers become NaN and are noted in ``not_numeric`` (the first per column)."""
    width = len(rows[0])
    cells = rows if len(numeric) == width else [[row[j] for j in numeric] for row in rows]
    try:
        converted = np.array(cells, dtype=np.float64).reshape(len(rows), len(numeric))
    except ValueError:  # a missing value or some text: find which, cell by cell
        converted = np.empty((len(rows), len(numeric)))
        for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
            for k, j in enumerate(numeric):
                converted[i, k] = _number(row[j], j, line, not_numeric)
    if len(numeric) == width:
        return converted
    out = np.full((len(rows), width), np.nan)
    out[:, numeric] = converted
    return out


def _number(cell: str, column: int, line: int, not_numeric: dict) -> float:
    if cell.strip() in MISSING:
        return np.nan
    try:
        return float(cell)
    except ValueError:
        not_numeric.setdefault(column, (cell, line))
        return np.nan
