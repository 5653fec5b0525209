"""The config.json schema refuses configs that cannot describe a usable model, reads the versions
earlier trainers wrote, and names the version it cannot read and what to do about it."""

import json

import pytest

from datasentinel.model_config import (
    V2_TRAINING_FIELDS,
    V3_FIELDS,
    ConfigError,
    MissingValues,
    SchemaVersionError,
    load_config,
    save_config,
    served_version,
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


def make_version_2(config_dir):
    """The file as a version-2 trainer wrote it: normalisation named mean/std, no version-3
    fields."""
    data = read(config_dir)
    data["schema_version"] = 2
    for name in V3_FIELDS:
        data.pop(name, None)
    data["training"].pop("threshold", None)
    norm = data["normalisation"]
    data["normalisation"] = {"mean": norm["centre"], "std": norm["scale"]}
    (config_dir / "config.json").write_text(json.dumps(data))


def make_version_1(config_dir):
    """The file as the first trainer wrote it: version 1, none of the version-2 fields."""
    make_version_2(config_dir)
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
    make_version_2(config_dir)
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
        (4, "schema_version 4 .* newer trainer; upgrade the engine, or retrain"),
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
    assert "reads (1, 2, 3)" in str(refused.value)
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


def test_zero_scale_is_refused(config_dir):
    data = read(config_dir)
    data["normalisation"]["scale"][0] = 0.0
    (config_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="scale"):
        load_config(config_dir)


def test_version_2_normalisation_reads_as_centre_and_scale(config_dir):
    written = load_config(config_dir).normalisation
    make_version_2(config_dir)
    config = load_config(config_dir)
    assert config.schema_version == 2
    assert config.normalisation == written


def test_saved_version_2_config_is_what_a_version_2_engine_reads(config_dir):
    make_version_2(config_dir)
    save_config(load_config(config_dir), config_dir)
    data = read(config_dir)
    assert set(data["normalisation"]) == {"mean", "std"}
    assert not set(V3_FIELDS) & set(data)
    assert "threshold" not in data["training"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("expected_output", "expected"),
        ("columns", {"keys": ["timestamp"]}),
        ("missing_values", {"fill": [0.0] * 4}),
    ],
)
def test_version_2_with_a_version_3_field_is_refused(config_dir, field, value):
    make_version_2(config_dir)
    rewrite(config_dir, **{field: value})
    with pytest.raises(ConfigError, match=f"{field}: need schema_version 3"):
        load_config(config_dir)


def test_version_3_round_trip_keeps_roles_missing_values_and_severity(config_dir):
    rewrite(
        config_dir,
        expected_output="expected",
        columns={"keys": ["timestamp", "machine_id"], "ignored": ["note"], "label": "label"},
        missing_values={"fill": [1.0, 2.0, 3.0, 4.0], "training_cells": 6},
        severity={"scores": [0.1, 1.0, 9.0], "levels": [0.0, 0.5, 0.99], "rows": 400,
                  "source": "validation"},
    )  # fmt: skip
    config = load_config(config_dir)
    save_config(config, config_dir)
    assert load_config(config_dir) == config
    assert config.key_columns == ["timestamp", "machine_id"]
    assert config.accepts_missing
    assert config.missing_values == MissingValues(fill=[1.0, 2.0, 3.0, 4.0], training_cells=6)


@pytest.mark.parametrize(
    "severity, says",
    [
        ({"scores": [2.0, 1.0], "levels": [0.0, 1.0]}, "ascending"),
        ({"scores": [1.0, 2.0], "levels": [0.5, 0.1]}, "ascending"),
        ({"scores": [1.0, 2.0], "levels": [0.0, 1.5]}, r"\[0, 1\]"),
        ({"scores": [1.0, 2.0, 3.0], "levels": [0.0, 1.0]}, "same length"),
    ],
)
def test_invalid_severity_tables_are_refused(config_dir, severity, says):
    rewrite(config_dir, severity={**severity, "rows": 10, "source": "validation"})
    with pytest.raises(ConfigError, match=says):
        load_config(config_dir)


def test_missing_values_need_one_fill_per_feature(config_dir):
    rewrite(config_dir, missing_values={"fill": [0.0, 1.0]})
    with pytest.raises(ConfigError, match="missing_values.fill"):
        load_config(config_dir)


def test_served_version_marks_a_threshold_the_trainer_did_not_choose(config_dir):
    rewrite_training(config_dir, threshold=0.5)
    rewrite(config_dir, threshold=0.5)
    config = load_config(config_dir)
    assert served_version(config) == config.model_version
    assert served_version(config, 0.5) == config.model_version
    assert served_version(config, 2.0) == f"{config.model_version}+threshold=2"
    rewrite(config_dir, threshold=0.75)  # config.json edited by hand
    assert served_version(load_config(config_dir)) == f"{config.model_version}+threshold=0.75"


def test_served_version_of_an_older_file_changes_only_with_an_override(config_dir):
    make_version_2(config_dir)
    config = load_config(config_dir)
    assert served_version(config) == config.model_version
    assert served_version(config, 3.0) == f"{config.model_version}+threshold=3"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)
