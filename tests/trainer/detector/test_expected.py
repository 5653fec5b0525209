"""The graph's third output: what the model expected each feature to be, in the feature's units,
from the component that gave the row's score."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from datasentinel.model_config import EXPECTED_OUTPUT, INPUT_NAME
from datasentinel.trainer.detector.graph import combine
from datasentinel.trainer.export.onnx_export import OUTPUTS
from datasentinel.trainer.pipeline import train_and_export
from datasentinel.trainer.settings import TrainerSettings
from tests.trainer.messy import SENSORS, messy_frame, sensor_rows, write

SHIFT = 6.0  # robust scales a sensor is displaced by


@pytest.fixture(scope="module")
def sensor_model(tmp_path_factory):
    """A model of the 12 correlated sensors (1000 validation rows: no cross-fitting)."""
    tmp = tmp_path_factory.mktemp("sensors")
    path = write(messy_frame(2000, empty_cells=0)[SENSORS], tmp / "sensors.csv")
    settings = TrainerSettings(
        data=path, models_dir=tmp / "m", epochs=60, validation_fraction=0.5,
        progress=False, plots=False,
    )  # fmt: skip
    return train_and_export(settings)


def _displaced(config, per_sensor: int = 2):
    """Unseen rows, each with one sensor (every sensor in turn) that sat at least 1.5 scales
    from its centre moved ``SHIFT`` scales further out: the centre is then a poor guess, and
    only the other sensors tell where the value belongs."""
    centre = np.asarray(config.normalisation.centre, dtype=np.float32)
    scale = np.asarray(config.normalisation.scale, dtype=np.float32)
    pool = sensor_rows(2000, seed=9).astype(np.float32)
    off = np.abs(pool - centre) / scale > 1.5
    rows = [(i, j) for j in range(12) for i in np.flatnonzero(off[:, j])[:per_sensor]]
    index, sensor = (np.array(v) for v in zip(*rows, strict=True))
    clean = pool[index]
    moved = clean.copy()
    away = np.sign(clean[np.arange(len(index)), sensor] - centre[sensor])
    moved[np.arange(len(index)), sensor] += SHIFT * scale[sensor] * away
    return clean, moved, sensor, centre, scale


def test_expected_value_of_a_displaced_sensor_is_near_where_it_was(sensor_model):
    clean, moved, sensor, centre, scale = _displaced(sensor_model.config)
    session = ort.InferenceSession(sensor_model.model_path, providers=["CPUExecutionProvider"])
    _, errors, expected = session.run(OUTPUTS, {INPUT_NAME: moved})
    k = np.arange(len(sensor))
    was, guess = clean[k, sensor], expected[k, sensor]
    rank_1 = float(np.mean(errors.argmax(axis=1) == sensor))
    near = float(np.mean(np.abs(guess - was) < 0.3 * SHIFT * scale[sensor]))
    better = float(np.mean(np.abs(guess - was) < np.abs(centre[sensor] - was)))
    off_by = np.median(np.abs(guess - was) / scale[sensor])
    print(f"{len(k)} rows: displaced sensor ranked first {rank_1:.0%}; expected within 0.3 of "
          f"the shift {near:.0%}, closer than the centre {better:.0%}, median {off_by:.2f} "
          "scales off")  # fmt: skip
    assert rank_1 >= 0.9 and near >= 0.9 and better >= 0.9


def test_expected_output_is_float32_rows_by_features(sensor_model):
    session = ort.InferenceSession(sensor_model.model_path, providers=["CPUExecutionProvider"])
    output = {o.name: o for o in session.get_outputs()}[EXPECTED_OUTPUT]
    assert output.type == "tensor(float)" and output.shape[1] == 12
    assert sensor_model.config.expected_output == EXPECTED_OUTPUT


def test_expected_values_come_from_the_component_that_gave_the_score():
    low, high = torch.zeros(2, 3), torch.ones(2, 3)
    high[0] = 0  # row 0: the first component wins, row 1 the second
    first, second = torch.full((2, 3), 10.0), torch.tensor([7.0, 8.0, 9.0])  # a centre
    score, errors, expected = combine([(low + 0.5, first), (high, second)], torch.zeros(2))
    torch.testing.assert_close(score, torch.tensor([1.25, 1.75]))  # 1 + the mean surprise
    torch.testing.assert_close(expected, torch.stack([first[0], second]))
