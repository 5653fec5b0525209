"""Column roles: text and date/time columns are keys, the column flags say the rest, and a numeric
column that looks like a row index, a timestamp or a label is never silently a feature."""

from __future__ import annotations

import logging

import pytest

from datasentinel.trainer.data.dataset import read_csv
from datasentinel.trainer.errors import DataError
from datasentinel.trainer.pipeline import train_and_export
from tests.trainer.messy import SENSORS, messy_frame, write

PLAIN = ["recorded", "row"]  # the numeric columns most tests leave out


@pytest.fixture
def messy_csv(tmp_path):
    def make(drop=PLAIN, **kwargs):
        return write(messy_frame(**kwargs).drop(columns=list(drop)), tmp_path / "log.csv")

    return make


def test_text_and_date_columns_become_keys_said_in_one_line(messy_csv, quick_settings, caplog):
    caplog.set_level(logging.INFO)
    result = train_and_export(quick_settings(data=messy_csv(), label_column="label"))
    columns = result.config.columns
    assert columns.keys == ["timestamp", "machine_id"] and columns.label == "label"
    assert result.config.feature_names == SENSORS
    said = [r.getMessage() for r in caplog.records if "machine_id" in r.getMessage()]
    assert len(said) == 1 and "timestamp (date/time)" in said[0], said


def test_space_separated_date_times_are_keys(tmp_path):
    frame = messy_frame().drop(columns=PLAIN)
    frame["timestamp"] = frame["timestamp"].str.replace("T", " ").str[:16]  # 2026-01-05 10:00
    dataset = read_csv(write(frame, tmp_path / "log.csv"), "label")
    assert dataset.columns.keys == ["timestamp", "machine_id"]


def test_key_columns_keep_a_numeric_column_out_of_the_features(messy_csv):
    dataset = read_csv(messy_csv(drop=["row"]), "label", key_columns=["recorded"])
    assert "recorded" not in dataset.feature_names
    assert dataset.columns.keys == ["timestamp", "machine_id", "recorded"]


def test_ignore_columns_drop_a_column(messy_csv):
    dataset = read_csv(messy_csv(drop=[]), "label", ignore_columns=["recorded", "row"])
    assert dataset.feature_names == SENSORS
    assert dataset.columns.ignored == ["recorded", "row"]
    assert dataset.columns.keys == ["timestamp", "machine_id"]


def test_feature_columns_are_exactly_the_features_and_the_rest_keys(messy_csv):
    chosen = [*SENSORS[:6], "row"]  # a named column is trusted, even an index
    dataset = read_csv(messy_csv(drop=[]), "label", feature_columns=chosen)
    assert dataset.feature_names == chosen
    assert dataset.columns.keys == ["timestamp", "machine_id", *SENSORS[6:], "recorded"]
    assert dataset.columns.label == "label"


@pytest.mark.parametrize("flag", ["key_columns", "ignore_columns", "feature_columns"])
def test_an_unknown_column_name_is_refused(messy_csv, flag):
    with pytest.raises(DataError) as error:
        read_csv(messy_csv(), "label", **{flag: ["sensor_1"]})
    message = str(error.value)
    assert "'sensor_1', which is not a column" in message and "sensor_01, sensor_02" in message


def test_an_epoch_seconds_column_is_refused_with_the_flags(messy_csv):
    with pytest.raises(DataError) as error:
        read_csv(messy_csv(drop=["row"]), "label")
    message = str(error.value)
    assert "'recorded' looks like a timestamp (epoch seconds" in message
    for flag in ("--key-columns recorded", "--ignore-columns recorded", "--feature-columns"):
        assert flag in message


def test_an_epoch_column_out_of_order_with_a_time_name_is_refused(tmp_path):
    frame = messy_frame().drop(columns=["row"]).rename(columns={"recorded": "created_at"})
    frame = frame.sample(frac=1, random_state=0)  # not in time order: the name says it
    with pytest.raises(DataError, match="'created_at' looks like a timestamp"):
        read_csv(write(frame, tmp_path / "log.csv"), "label")


def test_an_epoch_column_trains_as_a_key(messy_csv, quick_settings):
    settings = quick_settings(
        data=messy_csv(drop=["row"]), label_column="label", key_columns=["recorded"]
    )
    config = train_and_export(settings).config
    assert "recorded" in config.columns.keys and config.feature_names == SENSORS


def test_a_row_index_column_is_refused(messy_csv):
    with pytest.raises(DataError) as error:
        read_csv(messy_csv(drop=["recorded"]), "label")
    assert "'row' looks like a row index" in str(error.value)
    assert "--ignore-columns row" in str(error.value)


def test_a_label_column_is_refused_without_label_column(messy_csv):
    with pytest.raises(DataError) as error:
        read_csv(messy_csv())
    message = str(error.value)
    assert "'label' is named like a label" in message and "--label-column label" in message
