"""Reading a training CSV: the header checked before pandas reads it, and file lines for messages.

pandas turns several mistakes into quietly wrong data: duplicate names become ``a.1``, a nameless
column becomes ``Unnamed: 0`` (often a saved row index), a headerless file loses its first row to
the names, and a row longer than the header shifts columns into an index. Each is refused here,
in one line that names the file, the line or column, and what to do."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from datasentinel.text import is_number
from datasentinel.trainer.errors import DataError

HeaderMode = Literal["auto", "yes", "no"]
# Separators people save "CSV" with instead of commas (spreadsheets in many locales, TSV).
OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


def read_frame(path: Path, header: HeaderMode = "auto") -> pd.DataFrame:
    """The CSV's rows as a frame whose columns are the checked header names (or ``column_1``...
    with ``header="no"``). Numeric files come back as float32 columns, parsed without a float64
    copy; otherwise the column types pandas infers, for the caller to report."""
    first = _first_row(path)
    names = None if header == "no" else first
    if names is not None:
        _check_names(path, names, header)
    else:
        names = [f"column_{i}" for i in range(1, len(first) + 1)]
    try:
        return _parse(path, names, header != "no", np.float32)
    except ValueError:  # some cell is not a number: parse again to say which
        return _parse(path, names, header != "no", None)


def lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number in the file, fields) of every non-blank row, as pandas counts rows."""
    with _open(path) as handle:
        reader = csv.reader(handle)
        for fields in reader:
            if fields:
                yield reader.line_num, fields


def data_line(path: Path, row: int, has_header: bool = True) -> tuple[int, list[str]]:
    """The file line and fields of data row ``row`` (0-based). Only on the error path: it reads
    the file again."""
    wanted = row + (1 if has_header else 0)
    try:
        for index, found in enumerate(lines(path)):
            if index == wanted:
                return found
    except (csv.Error, UnicodeDecodeError, OSError):
        pass  # pandas read it, so this is rare (a field over csv's size limit): estimate
    return wanted + 1, []


def _first_row(path: Path) -> list[str]:
    try:
        first = next(lines(path), None)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}); is it a text file?") from None
    if first is None:
        raise DataError(f"{path}: the file is empty; expected a header line and rows of numbers")
    return first[1]


def _check_names(path: Path, names: list[str], header: HeaderMode) -> None:
    if len(names) == 1:
        for separator, what in OTHER_SEPARATORS.items():
            if separator in names[0]:
                raise DataError(
                    f"{path}: the header is separated by {what}, not commas; save the file as "
                    "comma-separated values (with '.' as the decimal point)"
                )
    for column, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError(
                f"{path}: column {column} has no name in the header; name it or drop it (a "
                "comma at the end of every line? a saved row index? pandas: to_csv(index=False))"
            )
    seen: dict[str, int] = {}
    for column, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"{path}: column name {name!r} appears twice (columns {seen[name]} and "
                f"{column}); give every column its own name"
            )
        seen[name] = column
    if header == "auto" and all(is_number(name) for name in names):
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise DataError(
            f"{path}: the first line ({shown}) is all numbers, so the file seems to have no "
            "header; add a line of column names, or pass --csv-header no (columns are then "
            "named column_1, column_2, ...) or --csv-header yes (these numbers are the names)"
        )


def _parse(path: Path, names: list[str], skip_header: bool, dtype: type | None) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # A row longer than the header: pandas would drop its extra fields with a warning.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # float32 overflow (1e39) warns and becomes inf, which the caller reports by cell.
            warnings.simplefilter("ignore", RuntimeWarning)
            return pd.read_csv(
                path,
                header=0 if skip_header else None,
                names=names,
                index_col=False,
                dtype=dtype,
                encoding="utf-8-sig",
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        raise _ragged(path, len(names)) from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _ragged(path: Path, n_names: int) -> DataError:
    try:
        for number, fields in lines(path):
            if len(fields) > n_names and any(field.strip() for field in fields[n_names:]):
                return DataError(
                    f"{path}: line {number} has {len(fields)} fields but the header has "
                    f"{n_names}; every line needs one value per column"
                )
    except (csv.Error, UnicodeDecodeError, OSError):
        pass
    return DataError(f"{path}: not a readable CSV; every line needs one value per column")


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> DataError:
    return DataError(
        f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8 CSV"
    )


def _open(path: Path):
    # utf-8-sig: a byte-order mark (as spreadsheets write) is not part of the first name.
    return open(path, encoding="utf-8-sig", newline="")
