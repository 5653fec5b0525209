"""A new user's scoring CSV (timestamps, machine ids, the sensors in any order, a label, extra
columns, a few empty cells) against a fake engine whose model names its features
(tests/producer/conftest.py: messy_table, table_engine)."""

import io
import logging

import numpy as np
import pandas as pd

from datasentinel.producer.app import run
from datasentinel.producer.cli import main
from datasentinel.producer.stream.ledger import RowState

SENSORS = ["temperature", "vibration", "pressure", "current"]  # as in conftest


def sent_vectors(engine) -> dict[int, np.ndarray]:
    """Each row id the engine received, with the vector it received."""
    vectors = {}
    for request in engine.requests:
        raw = request.raw
        rows = np.frombuffer(raw.data, dtype="<f4").reshape(raw.rows, raw.cols)
        vectors.update(zip(request.ids, rows, strict=True))
    return vectors


def scores_of(settings_for, engine, path, **fields) -> np.ndarray:
    return run(settings_for(engine, csv=path, **fields)).ledger.scores


def test_shuffled_columns_give_identical_scores(table_engine, settings_for, messy, tmp_path):
    engine = table_engine()  # its score weighs the 1st feature by 1, the 2nd by 2, ...
    table = messy(rows=20, empty=0)
    first = scores_of(settings_for, engine, table.write(tmp_path / "a.csv"))
    shuffled = scores_of(settings_for, engine, table.shuffled(seed=3).write(tmp_path / "b.csv"))
    np.testing.assert_array_equal(first, shuffled)
    weights = np.arange(1, 5)
    expected = (table.features.astype(np.float64) ** 2 * weights).mean(axis=1).astype(np.float32)
    np.testing.assert_array_equal(first, expected)  # the model's order, not the file's


def test_a_missing_feature_column_exits_2_with_one_line(
    table_engine, args_for, messy, tmp_path, caplog
):
    engine = table_engine()
    table = messy(rows=5, empty=0)
    path = table.reordered([c for c in table.header if c != "pressure"]).write(tmp_path / "in.csv")
    assert main(args_for(engine, "--csv", str(path))) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "lacks the model's feature column(s) 'pressure'" in error and "\n" not in error
    assert "the file's columns: 'timestamp', 'machine_id', 'temperature'" in error
    assert engine.requests == []


def test_extra_columns_are_kept_as_keys_with_their_raw_text(
    table_engine, settings_for, messy, tmp_path
):
    engine = table_engine()
    table = messy(rows=12, empty=0)
    output = tmp_path / "out.csv"
    run(settings_for(engine, csv=table.write(tmp_path / "in.csv"), output=output))
    frame = pd.read_csv(output, dtype=str, keep_default_na=False)
    for key in ("timestamp", "machine_id", "site", "shift"):
        assert frame[key].tolist() == table.column(key)  # "007" stays "007", "Lyon, hall B" too
    assert all(len(r.raw.data) == 4 * 4 * r.raw.rows for r in engine.requests)  # keys not sent


def test_empty_cells_are_sent_as_nan_to_a_model_that_fills_them(
    table_engine, settings_for, messy, tmp_path
):
    engine = table_engine(accepts_missing=True)
    table = messy(rows=30, empty=3)
    output = tmp_path / "out.csv"
    result = run(settings_for(engine, csv=table.write(tmp_path / "in.csv"), output=output))
    assert result.exit_code == 0 and result.missing_cells == 3
    vectors = sent_vectors(engine)
    np.testing.assert_array_equal(np.stack([vectors[i] for i in range(30)]), table.features)
    frame = pd.read_csv(output, keep_default_na=False)
    rows, cols = np.nonzero(np.isnan(table.features))
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        assert SENSORS[col] in frame["missing_features"][row].split(";")
    assert (frame["missing_features"] != "").sum() == len(set(rows.tolist()))


def test_rows_with_empty_cells_fail_for_a_model_that_cannot_fill_them(
    table_engine, settings_for, messy, tmp_path
):
    engine = table_engine(accepts_missing=False)
    table = messy(rows=30, empty=3)
    output = tmp_path / "out.csv"
    result = run(settings_for(engine, csv=table.write(tmp_path / "in.csv"), output=output))
    bad = sorted(set(np.nonzero(np.isnan(table.features))[0].tolist()))
    assert result.exit_code == 1 and result.failed == len(bad) and result.answered == 30 - len(bad)
    assert np.flatnonzero(result.ledger.state == RowState.FAILED).tolist() == bad
    assert sorted(sent_vectors(engine)) == sorted(set(range(30)) - set(bad))
    frame = pd.read_csv(output, keep_default_na=False)
    assert frame["id"].tolist() == list(range(30))  # every row, failed ones too
    row = bad[0]
    column = SENSORS[int(np.flatnonzero(np.isnan(table.features[row]))[0])]
    error = frame["error"][row]
    assert f"column '{column}' on line {row + 2}" in error and "does not fill in" in error
    assert frame["score"][row] == "" and frame["error"][0] == ""


def test_infinite_values_fail_their_row_naming_column_and_line(
    table_engine, settings_for, messy, tmp_path
):
    engine = table_engine(accepts_missing=True)  # fills NaN, but Inf is never sent
    table = messy(rows=10, empty=0).with_cell(4, "current", "inf").with_cell(7, "vibration", "1e39")
    result = run(settings_for(engine, csv=table.write(tmp_path / "in.csv")))
    assert np.flatnonzero(result.ledger.state == RowState.FAILED).tolist() == [4, 7]
    assert result.ledger.reason_of(4) == (
        "not sent: infinite or out-of-range value in column 'current' on line 6"
    )
    assert "column 'vibration' on line 9" in result.ledger.reason_of(7)
    assert (result.answered, result.exit_code) == (8, 1)


def test_text_in_a_feature_column_refuses_the_file(table_engine, args_for, messy, tmp_path):
    engine = table_engine()
    table = (
        messy(rows=5, empty=0)
        .with_cell(2, "machine_id", "x")
        .reordered(["timestamp", "temperature", "vibration", "pressure", "current"])
    )
    table.rows[3][2] = "broken"
    assert main(args_for(engine, "--csv", str(table.write(tmp_path / "in.csv")))) == 2
    assert engine.requests == []


def test_a_headerless_file_of_the_models_width_is_matched_by_position_with_one_warning(
    table_engine, settings_for, tmp_path, caplog
):
    engine = table_engine()
    path = tmp_path / "in.csv"
    path.write_text("1,2,3,4\n5,6,7,8\n")
    result = run(settings_for(engine, csv=path))
    assert result.exit_code == 0
    assert sent_vectors(engine)[1].tolist() == [5, 6, 7, 8]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no header row" in warnings[0].getMessage()


def test_a_headerless_file_of_another_width_exits_2(table_engine, args_for, tmp_path, caplog):
    engine = table_engine()
    path = tmp_path / "in.csv"
    path.write_text("1,2,3\n5,6,7\n")
    assert main(args_for(engine, "--csv", str(path))) == 2
    assert "no header row and 3 feature columns" in caplog.text


def test_csv_dash_reads_standard_input(table_engine, args_for, messy, tmp_path, monkeypatch):
    engine = table_engine(accepts_missing=True)
    table = messy(rows=9, empty=1)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(table.text().encode())))
    output = tmp_path / "out.csv"
    assert main(args_for(engine, "--csv", "-", "--output", str(output))) == 0
    assert pd.read_csv(output)["machine_id"].tolist() == table.column("machine_id")
    assert sorted(sent_vectors(engine)) == list(range(9))


def test_summary_counts_rows_not_sent_per_column_with_the_first_line(
    table_engine, settings_for, messy, tmp_path
):
    engine = table_engine()
    table = messy(rows=10, empty=0).with_cell(3, "current", "").with_cell(6, "current", "NA")
    out = io.StringIO()
    run(settings_for(engine, csv=table.write(tmp_path / "in.csv")), out=out)
    summary = out.getvalue().split("== summary")[1]
    assert "  2 with a missing value in 'current' (first on line 5)" in summary
    assert "failures" not in summary  # not a line per row


def test_empty_standard_input_exits_2_naming_it(engine, args_for, monkeypatch, caplog):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(args_for(engine, "--csv", "-")) == 2
    assert "standard input is empty" in caplog.text and engine.requests == []


def test_a_headerless_files_failed_rows_name_the_models_feature(
    table_engine, settings_for, tmp_path
):
    engine = table_engine()
    path = tmp_path / "in.csv"
    path.write_text("1,2,3,4\n5,6,,8\n")
    result = run(settings_for(engine, csv=path))
    assert "missing value in column 'pressure' on line 2" in result.ledger.reason_of(1)
