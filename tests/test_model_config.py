"""The config.json schema refuses configs that cannot describe a usable model, reads the versions
earlier trainers wrote, and names the version it cannot read and what to do about it."""

import json

import pytest

from datasentinel.model_config import (
    V2_TRAINING_FIELDS,
    ConfigError,
    SchemaVersionError,
    load_config,
    save_config,
)
from tests.conftest import build_tiny_model

THRESHOLD_FIELDS = {
    "threshold_rows": 30,
    "threshold_source": "out_of_fold",
    "warnings": ["threshold set from only 30 rows"],
}


@pytest.fixture
def config_dir(tmp_path):
    return build_tiny_model(tmp_path).dir


def read(config_dir):
    return json.loads((config_dir / "config.json").read_text())


def rewrite(config_dir, **changes):
    data = read(config_dir)
    data.update(changes)
    (config_dir / "config.json").write_text(json.dumps(data))


def rewrite_training(config_dir, **changes):
    rewrite(config_dir, training={**read(config_dir)["training"], **changes})


def make_version_1(config_dir):
    """The file as the previous trainer wrote it: version 1, none of the version-2 fields."""
    data = read(config_dir)
    data["schema_version"] = 1
    for name in V2_TRAINING_FIELDS:
        del data["training"][name]
    (config_dir / "config.json").write_text(json.dumps(data))


def test_round_trip(config_dir):
    config = load_config(config_dir)
    save_config(config, config_dir)
    assert load_config(config_dir) == config


def test_version_2_round_trip_keeps_the_threshold_fields(config_dir):
    rewrite_training(config_dir, **THRESHOLD_FIELDS)
    config = load_config(config_dir)
    save_config(config, config_dir)
    assert load_config(config_dir) == config
    assert config.schema_version == 2
    assert config.training.model_dump(include=set(THRESHOLD_FIELDS)) == THRESHOLD_FIELDS


def test_version_1_file_loads_with_the_defaults(config_dir):
    make_version_1(config_dir)
    config = load_config(config_dir)
    training = config.training
    assert config.schema_version == 1
    assert (training.threshold_rows, training.threshold_source, training.warnings) == (
        None,
        None,
        [],
    )


def test_saved_version_1_config_has_no_version_2_fields(config_dir):
    """An engine of the previous version (which forbids unknown fields) can still read it."""
    make_version_1(config_dir)
    save_config(load_config(config_dir), config_dir)
    assert not set(V2_TRAINING_FIELDS) & set(read(config_dir)["training"])


@pytest.mark.parametrize("name", V2_TRAINING_FIELDS)
def test_version_1_with_a_version_2_field_is_refused(config_dir, name):
    make_version_1(config_dir)
    rewrite_training(config_dir, **{name: THRESHOLD_FIELDS[name]})
    with pytest.raises(ConfigError, match=f"training.{name}: need schema_version 2"):
        load_config(config_dir)


@pytest.mark.parametrize(
    "version, says",
    [
        (3, "schema_version 3 .* newer trainer; upgrade the engine, or retrain"),
        (99, "schema_version 99 .* newer trainer; upgrade the engine, or retrain"),
        (0, "schema_version 0 .* no trainer writes version 0 .* retrain"),
        ("2", "schema_version '2' .* must be a whole number .* retrain"),
        (True, "schema_version True .* must be a whole number .* retrain"),
    ],
)
def test_unknown_schema_version_says_which_and_what_to_do(config_dir, version, says):
    rewrite(config_dir, schema_version=version)
    with pytest.raises(SchemaVersionError, match=says) as refused:
        load_config(config_dir)
    assert "reads (1, 2)" in str(refused.value)
    assert "Input should be" not in str(refused.value)  # not pydantic's field-by-field account


def test_missing_schema_version_is_refused(config_dir):
    data = read(config_dir)
    del data["schema_version"]
    (config_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match="has no schema_version.*retrain"):
        load_config(config_dir)


@pytest.mark.parametrize(
    "changes, field",
    [
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


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"threshold_rows": 0}, "training.threshold_rows"),
        ({"threshold_source": "test"}, "training.threshold_source"),
        ({"warnings": "one string"}, "training.warnings"),
    ],
)
def test_invalid_version_2_fields_name_the_problem(config_dir, changes, field):
    rewrite_training(config_dir, **changes)
    with pytest.raises(ConfigError, match=field):
        load_config(config_dir)


def test_zero_std_is_refused(config_dir):
    data = read(config_dir)
    data["normalisation"]["std"][0] = 0.0
    (config_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="std"):
        load_config(config_dir)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)
