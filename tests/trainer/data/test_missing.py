"""Empty cells: a few do not stop training; each feature's are filled with its training median,
by the exported graph itself, so serving a row with a cell missing scores it as that median."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from datasentinel.model_config import INPUT_NAME
from datasentinel.trainer.data.dataset import read_csv, split_dataset
from datasentinel.trainer.errors import DataError
from datasentinel.trainer.export.onnx_export import OUTPUTS
from datasentinel.trainer.pipeline import train_and_export
from datasentinel.trainer.settings import TrainerSettings
from tests.trainer.conftest import QUICK
from tests.trainer.messy import SENSORS, messy_frame, write

EMPTY_CELLS = 7


@pytest.fixture(scope="module")
def gappy_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gappy")
    frame = messy_frame(empty_cells=EMPTY_CELLS).drop(columns=["recorded", "row"])
    frame.iloc[3, 3:13] = np.nan  # a row missing most of its sensors
    cells = int(frame[SENSORS].isna().sum().sum())
    path = write(frame, tmp / "log.csv")
    settings = TrainerSettings(data=path, label_column="label", models_dir=tmp / "m", **QUICK)
    return train_and_export(settings), frame, cells


def test_empty_cells_train_and_are_counted(gappy_run):
    result, frame, cells = gappy_run
    missing = result.config.missing_values
    assert missing is not None and missing.training_cells == cells >= EMPTY_CELLS + 9
    # The fill is each sensor's median over its training rows' values (NaN left out).
    split = split_dataset(read_csv(result.config.training.data_source, "label"), 0.2, 0)
    medians = np.nanmedian(split.train.features.astype(np.float64), axis=0)
    np.testing.assert_allclose(missing.fill, medians, rtol=1e-6)


def test_a_missing_cell_is_scored_as_the_training_median(gappy_run):
    result, frame, _ = gappy_run
    fill = np.asarray(result.config.missing_values.fill, dtype=np.float32)
    rows = frame[SENSORS].dropna().to_numpy(np.float32)[:20]
    gaps = rows.copy()
    filled = rows.copy()
    for i in range(len(rows)):  # one cell per row, a different sensor each time
        gaps[i, i % 12] = np.nan
        filled[i, i % 12] = fill[i % 12]
    session = ort.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    with_gaps = session.run(OUTPUTS, {INPUT_NAME: gaps})
    with_fill = session.run(OUTPUTS, {INPUT_NAME: filled})
    assert np.isfinite(with_gaps[0]).all()
    for got, want in zip(with_gaps, with_fill, strict=True):
        np.testing.assert_array_equal(got, want)


def test_every_model_accepts_missing_values(tiny_run):
    missing = tiny_run.config.missing_values
    assert missing is not None and missing.training_cells == 0
    assert len(missing.fill) == tiny_run.config.input_dim


def test_an_infinite_cell_is_still_refused(tmp_path):
    frame = messy_frame().drop(columns=["recorded", "row"])
    frame.loc[9, "sensor_04"] = np.inf
    with pytest.raises(DataError, match="line 11, column 'sensor_04' .infinite"):
        read_csv(write(frame, tmp_path / "log.csv"), "label")
