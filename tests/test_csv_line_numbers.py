"""The trainer and the producer name the same line for the same bad cell: the file's line number,
counting the header and any blank lines (what an editor shows)."""

import pytest

from datasentinel.producer.errors import SourceError
from datasentinel.producer.sources import csv_source
from datasentinel.trainer.data import read_csv
from datasentinel.trainer.errors import DataError

HEADER = "a,b,c,label"
ROWS = [f"{i},{i + 1},{i + 2},0" for i in range(30)]


def bad_file(tmp_path, cell: str, blank_lines: bool):
    lines = [HEADER, *ROWS]
    lines[11] = f"1,2,{cell},0"  # index 11 = line 12 of the file
    if blank_lines:
        lines[5] = ""  # a blank line above it: pandas skips it, the file still counts it
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("blank_lines", [False, True])
@pytest.mark.parametrize("cell", ["x", "", "inf"])
def test_trainer_and_producer_point_at_the_same_line(tmp_path, cell, blank_lines):
    path = bad_file(tmp_path, cell, blank_lines)
    with pytest.raises(DataError) as trainer_error:
        read_csv(path, "label")
    with pytest.raises(SourceError) as producer_error:
        csv_source(path, "label")
    assert "line 12" in str(trainer_error.value)
    assert "line 12" in str(producer_error.value)
