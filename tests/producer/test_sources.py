import numpy as np
import pytest

from producer.errors import SourceError
from producer.sources import Batch, csv_source, paced, synthetic_source


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
