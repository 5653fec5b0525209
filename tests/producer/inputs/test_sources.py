import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from datasentinel.producer.errors import SourceError
from datasentinel.producer.inputs import csv_reader
from datasentinel.producer.inputs.sources import Batch, csv_source, paced, synthetic_source


def test_synthetic_batches_cover_every_row_once_in_order():
    source = synthetic_source(count=150, seed=1)
    batches = list(source.batches(64))
    assert [len(b.ids) for b in batches] == [64, 64, 22]
    assert np.concatenate([b.ids for b in batches]).tolist() == list(range(150))
    vectors = batches[0].vectors
    assert vectors.dtype == np.dtype("<f4") and vectors.flags.c_contiguous
    assert len(batches[2].labels) == 22


def write(tmp_path, text: str):
    path = tmp_path / "input.csv"
    path.write_text(text)
    return path


def test_csv_label_column_is_excluded_from_vectors_and_kept_as_labels(tmp_path):
    path = write(tmp_path, "a,label,b\n1,0,2\n3,1,4\n")
    source = csv_source(path, label_column="label")
    assert source.feature_names == ["a", "b"]
    assert source.features.tolist() == [[1, 2], [3, 4]]
    assert source.labels.tolist() == [0, 1]


def test_csv_without_label_column_has_no_labels(tmp_path):
    source = csv_source(write(tmp_path, "a,b\n1,2\n"))
    assert source.labels is None and source.width == 2


def test_non_numeric_column_is_named_with_its_line(tmp_path):
    path = write(tmp_path, "a,site\n1,north\n2,south\n")
    with pytest.raises(
        SourceError, match=r"non-numeric feature columns: 'site' \('north' on line 2"
    ):
        csv_source(path)


def test_missing_label_column_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no label column 'label' .columns: a, b"):
        csv_source(write(tmp_path, "a,b\n1,2\n"), label_column="label")


@pytest.mark.parametrize(("text", "match"), [("", "is empty"), ("a,b\n", "no rows")])
def test_empty_csv_is_a_clear_error(tmp_path, text, match):
    with pytest.raises(SourceError, match=match):
        csv_source(write(tmp_path, text))


def test_missing_value_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="column 'b' on line 3"):
        csv_source(write(tmp_path, "a,b\n1,2\n3,\n"))


def test_label_values_must_be_0_or_1(tmp_path):
    with pytest.raises(SourceError, match="must hold 0 or 1, found 'yes' on line 3"):
        csv_source(write(tmp_path, "a,y\n1,0\n2,yes\n"), label_column="y")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="cannot read"):
        csv_source(tmp_path / "nope.csv")


def test_csv_without_header_keeps_every_row(tmp_path):
    source = csv_source(write(tmp_path, "1,2\n3,4\n"))
    assert source.n_rows == 2 and source.feature_names is None


def test_paced_holds_the_average_rate():
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    batch = Batch(np.arange(10, dtype=np.uint64), np.zeros((10, 2), np.float32), None)
    list(paced([batch] * 4, rate=100, sleep=sleep, clock=lambda: now[0]))
    assert now[0] == pytest.approx(0.3)  # 40 vectors at 100/s: the 4th batch goes at 0.3 s


def test_paced_stops_when_sleep_reports_the_stream_ended():
    batch = Batch(np.arange(10, dtype=np.uint64), np.zeros((10, 2), np.float32), None)
    assert len(list(paced([batch] * 4, rate=10, sleep=lambda s: True))) == 1


def test_extra_field_is_an_error_not_a_silent_index_column(tmp_path):
    # pandas took the first of three fields as the row index and sent [2, 3] as the vector.
    with pytest.raises(SourceError, match="line 2 has 3 fields, the header has 2 fields"):
        csv_source(write(tmp_path, "a,b\n1,2,3\n"))


def test_short_row_is_named_with_its_line(tmp_path):
    with pytest.raises(SourceError, match="line 3 has 1 field, the header has 2 fields"):
        csv_source(write(tmp_path, "a,b\n1,2\n3\n"))


@pytest.mark.parametrize(
    ("text", "label", "match"),
    [
        ("a,b\n\n1,2\n\n3,nan\n", None, "column 'b' on line 5"),
        ("a,b\n\n1,2\n\n3,x\n", None, r"'b' \('x' on line 5\)"),
        ("a,y\n1,0\n\n2,2\n", "y", "found '2' on line 4"),
        ('a,"b\nc"\n1,2\n3,\n', None, "column 'b\\\\nc' on line 4"),
    ],
)
def test_error_lines_are_lines_of_the_file_blank_and_quoted_lines_counted(
    tmp_path, text, label, match
):
    with pytest.raises(SourceError, match=match):
        csv_source(write(tmp_path, text), label_column=label)


@pytest.mark.parametrize(("cell", "shown"), [("2", "'2'"), ("", "''"), ("NA", "'NA'")])
def test_bad_label_is_shown_as_written_in_the_file(tmp_path, cell, shown):
    with pytest.raises(SourceError, match=f"found {shown} on line 3"):
        csv_source(write(tmp_path, f"a,y\n1,0\n2,{cell}\n"), label_column="y")


def test_missing_value_markers_read_as_missing_not_as_text(tmp_path):
    for marker in ("NA", "N/A", "null", "NaN", ""):
        with pytest.raises(SourceError, match="missing or non-finite value.*column 'b' on line 3"):
            csv_source(write(tmp_path, f"a,b\n1,2\n3,{marker}\n"))


def test_bad_cell_after_many_clean_rows_is_found_with_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "CHUNK_ROWS", 4)  # the bad row in a later chunk than clean ones
    rows = "".join(f"{i},{i}\n" for i in range(10))
    with pytest.raises(SourceError, match=r"'b' \('oops' on line 12\)"):
        csv_source(write(tmp_path, "a,b\n" + rows + "1,oops\n"))


@settings(max_examples=40, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.tuples(st.integers(1, 12), st.integers(1, 4)),
        elements=st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False),
    ),
    header=st.booleans(),
    quoted=st.booleans(),
    blank_lines=st.booleans(),
)
def test_fast_and_row_by_row_readers_agree(values, header, quoted, blank_lines):
    q = '"' if quoted else ""
    lines = [",".join(f"{q}{float(x)!r}{q}" for x in row) for row in values]
    if blank_lines:
        lines = [line + "\n" for line in lines]
    text = "\n".join(lines) + "\n"
    if header:
        text = ",".join(f"c{j}" for j in range(values.shape[1])) + "\n" + text
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_text(text)
        fast, exact = csv_reader.read_table(path), csv_reader.read_table_by_rows(path)
    assert not fast.exact  # numpy's parser read it
    np.testing.assert_array_equal(fast.values, values)
    np.testing.assert_array_equal(exact.values, values)
    assert fast.names == exact.names and fast.has_header == exact.has_header == header
