"""The trainer and the producer name the same line for the same bad cell: the file's line number,
counting the header and any blank lines (what an editor shows)."""

import numpy as np
import pytest

from datasentinel.producer.errors import SourceError
from datasentinel.producer.inputs.sources import ModelSpec, csv_source
from datasentinel.trainer.data.dataset import read_csv
from datasentinel.trainer.errors import DataError

HEADER = "a,b,c,label"
# Not in order and not all different: no column looks like a row index or a timestamp.
ROWS = [f"{(7 * i) % 13},{(5 * i) % 11 + 0.5},{i % 4},0" for i in range(30)]
MODEL = ModelSpec(feature_names=["a", "b", "c"], input_dim=3, accepts_missing=False)


def bad_file(tmp_path, cell: str, blank_lines: bool):
    lines = [HEADER, *ROWS]
    lines[11] = f"1,2,{cell},0"  # index 11 = line 12 of the file
    if blank_lines:
        lines[5] = ""  # a blank line above it: pandas skips it, the file still counts it
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("blank_lines", [False, True])
def test_text_in_a_feature_column_names_the_same_line(tmp_path, blank_lines):
    path = bad_file(tmp_path, "x", blank_lines)
    with pytest.raises(DataError) as trainer_error:
        read_csv(path, "label")
    with pytest.raises(SourceError) as producer_error:
        csv_source(path, "label", MODEL)
    assert "line 12" in str(trainer_error.value)
    assert "line 12" in str(producer_error.value)


@pytest.mark.parametrize("blank_lines", [False, True])
def test_an_infinite_value_names_the_same_line(tmp_path, blank_lines):
    path = bad_file(tmp_path, "inf", blank_lines)
    with pytest.raises(DataError) as trainer_error:
        read_csv(path, "label")
    source = csv_source(path, "label", MODEL)
    assert "line 12" in str(trainer_error.value)
    assert source.rejected.tolist() == [9 if blank_lines else 10]  # data rows, blank skipped
    assert "line 12" in source.rejected_reasons[0]


@pytest.mark.parametrize("blank_lines", [False, True])
def test_an_empty_cell_is_trained_on_and_named_by_line_when_not_sent(tmp_path, blank_lines):
    path = bad_file(tmp_path, "", blank_lines)
    dataset = read_csv(path, "label")
    assert np.isnan(dataset.features).sum() == 1  # left for the pipeline to fill in
    source = csv_source(path, "label", MODEL)
    assert "line 12" in source.rejected_reasons[0]
