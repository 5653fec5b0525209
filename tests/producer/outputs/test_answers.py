"""Answers a person can act on: the --output columns, severity, the threshold used, the model that
scored each row, the top features; --output - and the output file's permissions."""

import csv
import io
import os

import numpy as np
import pandas as pd

from datasentinel.producer.app import run
from datasentinel.producer.cli import main

OUTPUT_COLUMNS = [
    "id",
    "timestamp",
    "machine_id",
    "site",
    "shift",
    "score",
    "is_anomaly",
    "severity",
    "threshold",
    "model_version",
    "top_features",
    "top_values",
    "top_expected",
    "missing_features",
    "label",
    "error",
]


def test_output_has_keys_results_label_and_error_in_this_order(
    table_engine, settings_for, messy, tmp_path
):
    engine = table_engine(accepts_missing=True)
    table = messy(rows=25, empty=2)
    output = tmp_path / "out.csv"
    run(settings_for(engine, csv=table.write(tmp_path / "in.csv"), label_column="label",
                     output=output))  # fmt: skip
    frame = pd.read_csv(output, keep_default_na=False)
    assert list(frame.columns) == OUTPUT_COLUMNS
    assert frame["id"].tolist() == list(range(25))
    assert frame["timestamp"].tolist() == table.column("timestamp")  # input order
    assert set(frame["model_version"]) == {"fake-1"} and set(frame["error"]) == {""}
    scores = frame["score"].to_numpy(np.float64)
    np.testing.assert_allclose(frame["severity"], scores / (1 + scores), rtol=1e-6)


def test_top_features_are_name_share_pairs_most_first(start_engine, settings_for, tmp_path):
    engine = start_engine(input_dim=4, feature_names=["a", "b", "c", "d"])
    path = tmp_path / "in.csv"
    path.write_text("d,c,b,a\n4,3,2,1\n")  # terms 1, 4, 9, 16 of 30
    output = tmp_path / "out.csv"
    run(settings_for(engine, csv=path, output=output))
    (row,) = csv.DictReader(output.open())
    assert row["top_features"] == "d:0.533;c:0.300;b:0.133"
    assert row["top_values"] == "d:4.0;c:3.0;b:2.0"
    assert row["top_expected"] == "d:0.0;c:0.0;b:0.0"
    assert row["missing_features"] == ""
    assert all(r.top_features == 3 for r in engine.requests)  # the default


def test_top_features_0_asks_for_none(start_engine, settings_for, tmp_path):
    engine = start_engine()
    output = tmp_path / "out.csv"
    run(settings_for(engine, count=50, top_features=0, output=output))
    assert all(r.top_features == 0 for r in engine.requests)
    assert set(pd.read_csv(output, keep_default_na=False)["top_features"]) == {""}


def test_threshold_is_sent_with_every_request_and_reported(start_engine, settings_for, tmp_path):
    engine = start_engine(threshold=1e9)  # nothing flagged at the model's threshold
    output, out = tmp_path / "out.csv", io.StringIO()
    result = run(settings_for(engine, count=200, batch_size=32, threshold=50, output=output), out)
    assert len(engine.requests) == 7
    assert all(r.HasField("threshold") and r.threshold == 50 for r in engine.requests)
    frame = pd.read_csv(output)
    assert set(frame["threshold"]) == {50.0}
    assert frame["is_anomaly"].tolist() == (frame["score"] > 50).astype(int).tolist()
    assert result.flagged > 0 and "(threshold 50)" in out.getvalue()


def test_without_threshold_the_engines_is_used(engine, settings_for):
    run(settings_for(engine, count=10))
    assert not any(r.HasField("threshold") for r in engine.requests)


def test_summary_has_a_line_per_model_version_after_a_reload(start_engine, settings_for, tmp_path):
    # Requests 0 and 1 (64 rows) are answered by fake-1 (threshold 11500), the rest by fake-2.
    engine = start_engine(reload_after=2, reloaded_threshold=0.0)
    output, out = tmp_path / "out.csv", io.StringIO()
    run(settings_for(engine, count=100, batch_size=32, output=output), out=out)
    frame = pd.read_csv(output)
    assert frame["model_version"].tolist() == ["fake-1"] * 64 + ["fake-2"] * 36
    assert set(frame["threshold"][64:]) == {0.0}
    n1 = int(frame["is_anomaly"][:64].sum())
    lines = out.getvalue().splitlines()
    assert f"  fake-1     64 answered, {n1} flagged ({n1 / 64:.2%}), threshold 1.15e+04" in lines
    assert "  fake-2     36 answered, 36 flagged (100.00%), threshold 0" in lines


def test_per_row_lines_show_severity_and_the_top_feature_of_flagged_rows(
    start_engine, settings_for, tmp_path
):
    engine = start_engine(input_dim=2, feature_names=["a", "b"], threshold=1.0)
    path = tmp_path / "in.csv"
    path.write_text("a,b\n0.5,0.5\n1,3\n")  # scores 0.25 (ok) and 5 (flagged)
    out = io.StringIO()
    run(settings_for(engine, csv=path, show="all"), out=out)
    ok, flagged = [line for line in out.getvalue().splitlines() if line.startswith("id ")]
    assert "severity 0.2000" in ok and "top" not in ok
    assert "severity 0.8333" in flagged
    assert "top b = 3.0 (expected 0.0, 90% of the score)" in flagged


def test_output_dash_writes_the_csv_to_stdout_and_the_rest_to_stderr(engine, args_for, capsys):
    assert main(args_for(engine, "--count", "40", "--output", "-", "--show", "all")) == 0
    captured = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(captured.out))
    assert frame["id"].tolist() == list(range(40)) and "== summary" not in captured.out
    assert "== summary" in captured.err and "id 39" in captured.err


def test_output_file_gets_the_users_umask(engine, settings_for, tmp_path):
    output = tmp_path / "out.csv"
    old = os.umask(0o027)
    try:
        run(settings_for(engine, count=10, output=output))
    finally:
        os.umask(old)
    assert output.stat().st_mode & 0o777 == 0o640


def test_a_key_column_named_like_an_output_column_is_renamed(start_engine, settings_for, tmp_path):
    engine = start_engine(input_dim=1, feature_names=["a"])
    path = tmp_path / "in.csv"
    path.write_text("score,a,label,y\nhigh,1,x,0\n")  # 'label' is a key here: y is the label
    output = tmp_path / "out.csv"
    run(settings_for(engine, csv=path, label_column="y", output=output))
    header, row = output.read_text().splitlines()
    assert header.startswith("id,input_score,input_label,score,")
    assert row.startswith("0,high,x,1,")


def test_without_labels_a_label_column_is_a_key_kept_as_is(start_engine, settings_for, tmp_path):
    engine = start_engine(input_dim=1, feature_names=["a"])
    path = tmp_path / "in.csv"
    path.write_text("a,label\n1,yes\n")
    output = tmp_path / "out.csv"
    run(settings_for(engine, csv=path, output=output))
    assert output.read_text().splitlines()[0].startswith("id,label,score,")
