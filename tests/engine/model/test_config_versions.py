"""The engine serves config.json versions 1 and 2 and refuses any other with one line that names
the version and what to do: at start-up it exits with code 2, on a reload it keeps serving."""

from __future__ import annotations

import json
import logging

import numpy as np

from datasentinel.engine.__main__ import main
from datasentinel.engine.model.reload import ModelReloader
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.protocol.v1_converters import model_info
from datasentinel.engine.scoring.core import Limits, ScoreBatch
from datasentinel.model_config import CONFIG_FILENAME, V2_TRAINING_FIELDS
from tests.conftest import build_tiny_model

CPU = RuntimeOptions(providers=("CPUExecutionProvider",))
NEWER = (
    "schema_version 99 is not one this DataSentinel reads (1, 2, 3): it was written by a newer "
    "trainer; upgrade the engine, or retrain"
)


def edit_config(models_dir, edit) -> None:
    path = models_dir / CONFIG_FILENAME
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def newer_version(data: dict) -> None:
    data["schema_version"] = 99


def as_version_1(data: dict) -> None:
    """What the previous trainer wrote: version 1, none of the version-2 fields."""
    data["schema_version"] = 1
    for name in V2_TRAINING_FIELDS:
        del data["training"][name]


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_version_1_config_still_serves(tiny_model):
    edit_config(tiny_model.dir, as_version_1)
    model = load_model(tiny_model.dir, CPU)
    x = np.ones((3, tiny_model.dim), np.float32)
    np.testing.assert_allclose(model.run(x).scores, tiny_model.expected(x)[0], rtol=1e-5)
    assert model_info(model, Limits()).config_schema_version == 1


def test_start_up_with_a_newer_config_exits_2_with_one_clear_line(tiny_model, caplog):
    edit_config(tiny_model.dir, newer_version)
    args = ["--models-dir", str(tiny_model.dir), "--workers", "1", "--port", "0"]
    with caplog.at_level(logging.ERROR):
        code = main([*args, "--metrics-port", "0", "--providers", "CPUExecutionProvider"])
    assert code == 2
    [line] = error_lines(caplog)
    assert NEWER in line
    assert "run the trainer first" not in line  # there is a model; it is too new


async def test_reload_to_a_newer_config_keeps_serving_and_says_why(core, tiny_model, caplog):
    build_tiny_model(tiny_model.dir, version="tiny-from-the-future", seed=5)
    edit_config(tiny_model.dir, newer_version)
    outcomes = []
    reloader = ModelReloader(core, tiny_model.dir, CPU, 0.0, on_outcome=outcomes.append)
    assert not await reloader.reload()
    assert outcomes == [False]
    [line] = error_lines(caplog)
    assert f"still serving {tiny_model.version}" in line and NEWER in line
    rows = ScoreBatch([0], np.ones((1, tiny_model.dim), np.float32))
    assert (await core.score(rows)).model_version == tiny_model.version
