"""Bad CSVs through the command line: each is refused in one line (exit 2) that names the file and
where the problem is, or trains correctly. Never a traceback, never a misleading message."""

import logging

import numpy as np
import pytest

from datasentinel.model_config import load_config
from datasentinel.trainer.cli import main

NAMES = ["f0", "f1", "f2", "f3"]
FAST = ["--epochs", "1", "--ensemble-size", "1", "--no-plots", "--no-progress"]


def _rows(n_rows: int = 40, n_cols: int = 4, seed: int = 0) -> list[str]:
    values = np.random.default_rng(seed).normal(size=(n_rows, n_cols))
    return [",".join(f"{v:.5f}" for v in row) for row in values]


def _csv(rows: list[str], header: str = ",".join(NAMES)) -> str:
    return "\n".join([header, *rows]) + "\n"


def _replace_line(line: int, text: str) -> str:
    """A good file whose ``line`` (1 = the header) is ``text``."""
    lines = _csv(_rows()).splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


def _with_column(name: str, values: list[str]) -> str:
    rows = [f"{row},{value}" for row, value in zip(_rows(), values, strict=True)]
    return _csv(rows, ",".join([*NAMES, name]))


def _labels(*values: str) -> list[str]:
    return [*values, *["0", "1"] * 20][:40]


GOOD = _csv(_rows())
LINE_5 = _rows()[3]  # the 4th data row sits on line 5

# (id, file contents, extra flags, fragments the one-line error must hold)
REFUSED = [
    ("empty", "", [], ["the file is empty"]),
    ("only-blank-lines", "\n\n\n", [], ["the file is empty"]),
    ("header-only", "f0,f1,f2\n", [], ["no data rows"]),
    ("one-row", "f0,f1,f2\n1,2,3\n", [], ["1 data rows", "at least 10"]),
    (
        "only-text-and-dates",
        "site,day\n" + "north,2026-01-05\n" * 40,
        [],
        ["no numeric feature columns left", "keys: site, day"],
    ),
    ("text-cell", _replace_line(6, "1,2,abc,4"), [], ["'f2' is not numeric", "line 6", "'abc'"]),
    ("thousands", _replace_line(3, '1,2,"1,000",4'), [], ["'f2' is not numeric", "'1,000'"]),
    ("all-empty-column", _with_column("g", [""] * 40), [], ["'g' has no", "--ignore-columns g"]),
    ("inf", _replace_line(10, "1,2,3,inf"), [], ["line 10", "'f3'", "infinite"]),
    (
        "inf-after-blank-line",  # the line number is the file's, blank lines counted
        _replace_line(10, "1,2,3,inf").replace("\n", "\n\n", 3).replace("\n\n", "\n", 2),
        [],
        ["line 11", "'f3'"],
    ),
    ("minus-inf", _replace_line(10, "-inf,2,3,4"), [], ["line 10", "'f0'", "infinite"]),
    ("beyond-float32", _replace_line(10, "1,2,3,1e39"), [], ["line 10", "beyond float32"]),
    (
        "placeholder-value",
        _replace_line(5, "1,2,-1e30,4"),
        [],
        ["line 5", "'f2' holds -1e+30", "placeholder"],
    ),
    ("short-row", _replace_line(10, "1,2,3"), [], ["line 10 has 3 fields", "header has 4"]),
    ("long-row", _replace_line(10, "1,2,3,4,5"), [], ["line 10 has 5 fields", "header has 4"]),
    ("first-row-long", _replace_line(2, "9,1,2,3,4"), [], ["line 2 has 5 fields"]),
    ("duplicate-names", _csv(_rows(), "a,b,a,c"), [], ["'a' appears twice", "columns 1 and 3"]),
    (
        "saved-index",
        _csv([f"{i},{r}" for i, r in enumerate(_rows())], ",a,b,c,d"),
        [],
        ["column 1 has no name"],
    ),
    ("trailing-comma", _csv([f"{r}," for r in _rows()], "a,b,c,d,"), [], ["column 5 has no name"]),
    ("no-header", "\n".join(_rows()) + "\n", [], ["all numbers", "--csv-header no"]),
    ("numeric-names", _csv(_rows(), "400,450,500,550"), [], ["all numbers"]),
    ("semicolons", GOOD.replace(",", ";"), [], ["separated by semicolons"]),
    (
        "semicolons-decimal-comma",
        GOOD.replace(",", ";").replace(".", ","),
        [],
        ["separated by semicolons"],
    ),
    ("tabs", GOOD.replace(",", "\t"), [], ["separated by tabs"]),
    (
        "one-column",
        "x\n" + "\n".join(str(v % 7) for v in range(40)) + "\n",
        [],
        ["only 1 feature column", "at least 2 varying"],
    ),
    ("all-constant", "a,b\n" + "1,2\n" * 40, [], ["only 0 of 2 feature columns vary"]),
    ("one-varying", "a,b\n" + "".join(f"{i % 7},2\n" for i in range(40)), [], ["only 1 of 2"]),
    ("label-missing", GOOD, ["--label-column", "y"], ["label column 'y' not found", "f0, f1"]),
    (
        "label-not-binary",
        _with_column("y", _labels("0", "1", "2")),
        ["--label-column", "y"],
        ["only 0 (normal) or 1", "line 4 holds '2'"],
    ),
    (
        "label-word",
        _with_column("y", _labels("yes")),
        ["--label-column", "y"],
        ["line 2 holds 'yes'"],
    ),
    (
        "label-empty-cell",
        _with_column("y", _labels("0", "")),
        ["--label-column", "y"],
        ["line 3 holds an empty cell"],
    ),
    (
        "label-only",
        "y\n" + "0\n1\n" * 20,
        ["--label-column", "y"],
        ["no feature columns besides the label column 'y'"],
    ),
    ("latin-1", "caf\xe9,b\n" + "1,2\n" * 40, [], ["not UTF-8", "save it as UTF-8"]),
    ("binary", bytes(range(256)) * 8, [], ["not UTF-8"]),
]


def _write(tmp_path, contents) -> str:
    path = tmp_path / "data.csv"
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        path.write_text(contents, encoding="latin-1" if "\xe9" in contents else "utf-8")
    return str(path)


def _one_error(caplog) -> str:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    (record,) = errors
    assert record.exc_info is None and "\n" not in record.getMessage()
    return record.getMessage()


@pytest.mark.parametrize(
    ("contents", "flags", "fragments"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_bad_csv_is_refused_in_one_line(tmp_path, caplog, contents, flags, fragments):
    data = _write(tmp_path, contents)
    models = tmp_path / "models"
    assert main(["--data", data, "--models-dir", str(models), *FAST, *flags]) == 2
    message = _one_error(caplog)
    assert data in message
    for fragment in fragments:
        assert fragment in message
    assert "Traceback" not in caplog.text
    assert not models.exists()


def test_missing_file_and_directory_are_refused(tmp_path, caplog):
    for data in (tmp_path / "absent.csv", tmp_path):
        caplog.clear()
        assert main(["--data", str(data), "--models-dir", str(tmp_path / "m"), *FAST]) == 2
        assert str(data) in _one_error(caplog)


def _trains(tmp_path, contents, *flags: str):
    models = tmp_path / "models"
    argv = ["--data", _write(tmp_path, contents), "--models-dir", str(models), *FAST, *flags]
    assert main(argv) == 0
    return load_config(models)


# (id, file contents, extra flags, feature names, training + validation rows)
TRAINED = [
    ("byte-order-mark", "\ufeff" + GOOD, [], NAMES, 40),
    ("crlf", GOOD.replace("\n", "\r\n"), [], NAMES, 40),
    (
        "quoted-numbers",
        "\n".join(f'"{line}"'.replace(",", '","') for line in GOOD.split()),
        [],
        NAMES,
        40,
    ),
    ("blank-lines", GOOD.replace("\n", "\n\n", 5) + "\n\n", [], NAMES, 40),
    ("comma-after-each-row", _csv([f"{r}," for r in _rows()]), [], NAMES, 40),
    (
        "no-header-flag",
        "\n".join(_rows()) + "\n",
        ["--csv-header", "no"],
        ["column_1", "column_2", "column_3", "column_4"],
        40,
    ),
    (
        "numeric-names-flag",
        _csv(_rows(), "400,450,500,550"),
        ["--csv-header", "yes"],
        ["400", "450", "500", "550"],
        40,
    ),
    ("constant-column", _with_column("g", ["5"] * 40), [], [*NAMES, "g"], 40),
    ("large-values", _replace_line(5, "1e6,2,3,4"), [], NAMES, 40),
    ("labels", _with_column("y", _labels()), ["--label-column", "y"], NAMES, 40),
    ("text-column", _with_column("site", ["north"] * 40), [], NAMES, 40),
    ("empty-cell", _replace_line(8, "1,,3,4"), [], NAMES, 40),
    ("nan-cell", _replace_line(8, "1,NaN,3,4"), [], NAMES, 40),
]


@pytest.mark.parametrize(
    ("contents", "flags", "names", "rows"),
    [case[1:] for case in TRAINED],
    ids=[case[0] for case in TRAINED],
)
def test_unusual_but_valid_csv_trains(tmp_path, caplog, contents, flags, names, rows):
    config = _trains(tmp_path, contents, *flags)
    assert config.feature_names == names
    assert config.training.rows_train + config.training.rows_validation == rows
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_constant_column_is_named_in_a_warning(tmp_path, caplog):
    _trains(tmp_path, _with_column("g", ["5"] * 40))
    assert any(
        r.levelno == logging.WARNING and "constant" in r.getMessage() and ": g;" in r.getMessage()
        for r in caplog.records
    )


def test_very_wide_csv_trains(tmp_path):
    rows = _rows(n_rows=30, n_cols=300)
    header = ",".join(f"c{i}" for i in range(300))
    config = _trains(tmp_path, _csv(rows, header))
    assert config.input_dim == 300
