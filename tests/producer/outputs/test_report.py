import io

import numpy as np
import pandas as pd

from datasentinel import synthetic
from datasentinel.producer.app import run
from datasentinel.producer.cli import main
from datasentinel.producer.outputs.report import ANOMALY_MARK, RESULT_COLUMNS


def fake_scores(vectors: np.ndarray) -> np.ndarray:  # as the fake engine scores
    return (vectors.astype(np.float64) ** 2).mean(axis=1).astype(np.float32)


def test_output_has_one_row_per_input_row_in_input_order_with_labels(engine, args_for, tmp_path):
    output = tmp_path / "out" / "results.csv"
    assert main(args_for(engine, "--count", "150", "--output", str(output))) == 0
    frame = pd.read_csv(output)
    data = synthetic.generate(150, seed=1)
    assert list(frame.columns) == ["id", *RESULT_COLUMNS, "label", "error"]
    assert frame["id"].tolist() == list(range(150))
    np.testing.assert_array_equal(frame["score"].to_numpy(np.float32), fake_scores(data.features))
    assert frame["label"].tolist() == data.labels.tolist()
    assert set(frame["is_anomaly"]) <= {0, 1}
    assert [p.name for p in output.parent.iterdir()] == ["results.csv"]  # no temp file left


def test_output_from_csv_input_has_label_column_only_when_given(start_engine, args_for, tmp_path):
    engine = start_engine(input_dim=2, feature_names=["a", "b"])
    source = tmp_path / "in.csv"
    source.write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n")
    no_labels, with_labels = tmp_path / "plain.csv", tmp_path / "labelled.csv"
    plain_source = tmp_path / "plain_in.csv"
    plain_source.write_text("a,b\n1,2\n3,4\n5,6\n")
    assert main(args_for(engine, "--csv", str(plain_source), "--output", str(no_labels))) == 0
    flags = ["--csv", str(source), "--label-column", "y", "--output", str(with_labels)]
    assert main(args_for(engine, *flags)) == 0
    assert no_labels.read_text().splitlines()[0] == ",".join(["id", *RESULT_COLUMNS, "error"])
    assert pd.read_csv(with_labels)["label"].tolist() == [0, 1, 0]
    assert engine.requests[-1].raw.cols == 2  # the label column was not sent


def test_failed_rows_are_in_the_output_with_empty_score(start_engine, settings_for, tmp_path):
    engine = start_engine(fail_requests=frozenset({0}))
    output = tmp_path / "results.csv"
    run(settings_for(engine, count=100, batch_size=50, output=output))
    lines = output.read_text().splitlines()
    assert len(lines) == 101
    assert lines[1].startswith("0,,,")  # id 0 failed: empty score and is_anomaly
    frame = pd.read_csv(output)
    assert frame["score"].isna().sum() == 50 and frame["score"][50:].notna().all()


def test_flagged_rows_stand_out_without_colour_when_not_a_tty(start_engine, settings_for):
    engine = start_engine(threshold=0.0)  # every row flagged
    out = io.StringIO()
    run(settings_for(engine, count=20, show="anomalies"), out=out)
    rows = [line for line in out.getvalue().splitlines() if line.startswith("id ")]
    assert len(rows) == 20 and all(ANOMALY_MARK in line for line in rows)
    assert "label " in rows[0]
    assert "\033[" not in out.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_flagged_rows_are_coloured_on_a_terminal(start_engine, settings_for):
    engine = start_engine(threshold=0.0)
    out = Terminal()
    run(settings_for(engine, count=5, show="anomalies"), out=out)
    assert "\033[1;31mid 0  score" in out.getvalue()


def test_show_anomalies_prints_a_baseline_then_only_flagged_rows(engine, settings_for):
    out = io.StringIO()
    result = run(settings_for(engine, count=1000, show="anomalies"), out=out)
    rows = [line for line in out.getvalue().splitlines() if line.startswith("id ")]
    flagged_after_baseline = [r for r in rows[5:] if ANOMALY_MARK in r]
    assert 0 < result.flagged and len(rows) <= 5 + result.flagged
    assert rows[5:] == flagged_after_baseline


def test_summary_reports_counts_latency_and_label_metrics(engine, settings_for):
    out = io.StringIO()
    result = run(settings_for(engine, count=1000), out=out)
    summary = out.getvalue()
    assert "sent         1000 of 1000 vectors in 16 messages" in summary
    assert f"flagged      {result.flagged} of 1000 answered" in summary
    assert "1,000 vectors in" in summary and "p99" in summary  # a rate only over >= 1 s
    m = result.metrics
    assert 0 <= m.precision <= 1 and 0 <= m.recall <= 1 and 0 <= m.roc_auc <= 1
    assert f"ROC-AUC {m.roc_auc:.3f}" in summary
    assert "result       OK: every vector answered (exit code 0)" in summary
