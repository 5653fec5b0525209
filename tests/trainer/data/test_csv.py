import logging

import numpy as np
import pandas as pd
import pytest

from datasentinel import synthetic
from datasentinel.model_config import load_config
from datasentinel.trainer.cli import main
from datasentinel.trainer.data.dataset import read_csv
from datasentinel.trainer.errors import DataError
from datasentinel.trainer.pipeline import train_and_export

LABEL = "is_anomaly"


def _labelled_frame(n_rows: int = 800) -> pd.DataFrame:
    data = synthetic.generate(n_rows, seed=3)
    frame = pd.DataFrame(data.features, columns=data.feature_names)
    frame.insert(3, LABEL, data.labels)  # in the middle, not conveniently last
    return frame


@pytest.fixture
def labelled_csv(tmp_path):
    path = tmp_path / "labelled.csv"
    _labelled_frame().to_csv(path, index=False)
    return path


def test_label_column_is_not_a_feature(labelled_csv, quick_settings):
    result = train_and_export(quick_settings(data=labelled_csv, label_column=LABEL, epochs=3))
    assert result.config.input_dim == 8
    assert LABEL not in result.config.feature_names


def test_main_reports_metrics_for_labelled_csv(labelled_csv, tmp_path, capsys):
    models_dir = tmp_path / "m"
    argv = ["--data", str(labelled_csv), "--label-column", LABEL, "--models-dir", str(models_dir)]
    assert main([*argv, "--epochs", "3", "--no-progress", "--no-plots"]) == 0
    assert "ROC-AUC" in capsys.readouterr().out
    training = load_config(models_dir).training
    assert None not in (training.roc_auc, training.precision, training.recall)


def _assert_one_line_error(caplog, *fragments):
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is None and "\n" not in record.getMessage()
    for fragment in fragments:
        assert fragment in record.getMessage()


def test_text_column_is_a_key_not_a_feature(tmp_path):
    frame = _labelled_frame(50).assign(site="north")
    frame.to_csv(tmp_path / "text.csv", index=False)
    dataset = read_csv(tmp_path / "text.csv", LABEL)
    assert "site" not in dataset.feature_names and dataset.columns.keys == ["site"]


def test_a_word_among_numbers_is_refused_not_made_a_key(tmp_path, caplog):
    frame = _labelled_frame(50).astype({"sensor_00": object})
    frame.loc[7, "sensor_00"] = "n/a?"
    frame.to_csv(tmp_path / "typo.csv", index=False)
    argv = ["--data", str(tmp_path / "typo.csv"), "--models-dir", str(tmp_path / "m")]
    assert main([*argv, "--label-column", LABEL]) == 2
    _assert_one_line_error(caplog, "'sensor_00' is not numeric", "line 9")
    assert not (tmp_path / "m").exists()


def test_missing_label_column_exits_2(labelled_csv, tmp_path, caplog):
    argv = ["--data", str(labelled_csv), "--label-column", "label", "--models-dir", str(tmp_path)]
    assert main(argv) == 2
    _assert_one_line_error(caplog, "'label' not found")


def test_infinite_feature_is_rejected(tmp_path):
    frame = _labelled_frame(50)
    frame.iloc[7, 0] = np.inf
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(DataError, match="infinite"):
        read_csv(tmp_path / "gaps.csv", LABEL)


def test_too_few_rows_are_rejected(tmp_path):
    _labelled_frame(5).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="at least"):
        read_csv(tmp_path / "short.csv", LABEL)


def test_labels_other_than_0_and_1_are_rejected(tmp_path):
    _labelled_frame(50).assign(**{LABEL: "yes"}).to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(DataError, match="only 0"):
        read_csv(tmp_path / "words.csv", LABEL)
