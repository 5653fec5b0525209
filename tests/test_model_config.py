"""The config.json schema refuses configs that cannot describe a usable model."""

import json

import pytest

from datasentinel.model_config import ConfigError, load_config, save_config
from tests.conftest import build_tiny_model


@pytest.fixture
def config_dir(tmp_path):
    return build_tiny_model(tmp_path).dir


def rewrite(config_dir, **changes):
    path = config_dir / "config.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_round_trip(config_dir):
    config = load_config(config_dir)
    save_config(config, config_dir)
    assert load_config(config_dir) == config


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"schema_version": 2}, "schema_version"),
        ({"input_dim": 3}, "input_dim is 3"),
        ({"feature_names": ["a", "a", "b", "c"]}, "unique"),
        ({"threshold": -1.0}, "threshold"),
        ({"model_sha256": "abc"}, "model_sha256"),
        ({"surprise": 1}, "surprise"),
        ({"model_file": "../model.onnx"}, "model_file: .*plain file name"),
        ({"model_file": "/etc/passwd"}, "model_file: .*plain file name"),
        ({"model_file": "sub/model.onnx"}, "model_file: .*plain file name"),
        ({"model_file": ".."}, "model_file: .*plain file name"),
        ({"model_file": ""}, "model_file: .*plain file name"),
    ],
)
def test_invalid_configs_name_the_problem(config_dir, changes, field):
    rewrite(config_dir, **changes)
    with pytest.raises(ConfigError, match=field):
        load_config(config_dir)


def test_zero_std_is_refused(config_dir):
    data = json.loads((config_dir / "config.json").read_text())
    data["normalisation"]["std"][0] = 0.0
    (config_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="std"):
        load_config(config_dir)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)
