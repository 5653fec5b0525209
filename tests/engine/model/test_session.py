"""Bad artifacts are refused at load time with a message that says what to do."""

import json

import numpy as np
import pytest

from datasentinel.engine.errors import ModelLoadError
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.model_config import CONFIG_FILENAME, MODEL_FILENAME, sha256_file
from tests.conftest import kubernetes_volume

CPU_ONLY = RuntimeOptions(providers=("CPUExecutionProvider",))


def edit_config(models_dir, **changes):
    path = models_dir / CONFIG_FILENAME
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def test_loads_and_scores_like_the_reference(tiny_model):
    model = load_model(tiny_model.dir, CPU_ONLY)
    x = np.random.default_rng(3).normal(size=(7, tiny_model.dim)).astype(np.float32)
    out = model.run(x)
    scores, errors = tiny_model.expected(x)
    np.testing.assert_allclose(out.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.feature_errors, errors, rtol=1e-5, atol=1e-6)
    assert model.provider == "CPUExecutionProvider"


def test_missing_directory_says_run_the_trainer(tmp_path):
    with pytest.raises(ModelLoadError, match="not found.*run the trainer"):
        load_model(tmp_path / "nothing", CPU_ONLY)


def test_missing_model_file(tiny_model):
    (tiny_model.dir / MODEL_FILENAME).unlink()
    with pytest.raises(ModelLoadError, match="model.onnx not found"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_model_from_another_run_is_refused(tiny_model):
    with open(tiny_model.dir / MODEL_FILENAME, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="does not match config.json"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_corrupt_model_with_matching_hash_is_refused(tiny_model):
    path = tiny_model.dir / MODEL_FILENAME
    path.write_bytes(b"this is not an onnx model")
    edit_config(tiny_model.dir, model_sha256=sha256_file(path))
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_config_dimension_not_matching_the_model(tiny_model):
    dim = tiny_model.dim + 1
    edit_config(
        tiny_model.dir,
        input_dim=dim,
        feature_names=[f"f{i}" for i in range(dim)],
        normalisation={"mean": [0.0] * dim, "std": [1.0] * dim},
    )
    with pytest.raises(ModelLoadError, match="config.json says input_dim 5"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_config_output_names_not_in_the_model(tiny_model):
    edit_config(tiny_model.dir, score_output="anomaly_score")
    with pytest.raises(ModelLoadError, match="lacks outputs"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_invalid_config_names_the_field(tiny_model):
    edit_config(tiny_model.dir, threshold="high")
    with pytest.raises(ModelLoadError, match="threshold"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_unreadable_json(tiny_model):
    (tiny_model.dir / CONFIG_FILENAME).write_text("{not json")
    with pytest.raises(ModelLoadError, match="not a valid model config"):
        load_model(tiny_model.dir, CPU_ONLY)


@pytest.mark.parametrize("where", ["../model.onnx", "absolute"])
def test_model_file_outside_the_models_folder_is_refused(tiny_model, where):
    """Even a file that exists and matches the hash: config.json may only name a file inside
    the models folder (a copied or mounted config must not make the engine read anything)."""
    outside = tiny_model.dir.parent / "model.onnx"
    outside.write_bytes((tiny_model.dir / MODEL_FILENAME).read_bytes())
    edit_config(tiny_model.dir, model_file=str(outside) if where == "absolute" else where)
    with pytest.raises(ModelLoadError, match="plain file name inside the models folder"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_model_file_with_another_plain_name_loads(tiny_model):
    (tiny_model.dir / MODEL_FILENAME).rename(tiny_model.dir / "detector-v2.onnx")
    edit_config(tiny_model.dir, model_file="detector-v2.onnx")
    assert load_model(tiny_model.dir, CPU_ONLY).input_dim == tiny_model.dim


@pytest.mark.parametrize("name", [MODEL_FILENAME, CONFIG_FILENAME])
def test_artifact_linked_to_another_folder_is_refused(tiny_model, tmp_path, name):
    """config.json checks model_file as text; a link named model.onnx must not get past it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tiny_model.dir / name).rename(elsewhere / name)
    (tiny_model.dir / name).symlink_to(elsewhere / name)
    with pytest.raises(ModelLoadError, match=f"{name} is a link to .*outside the models folder"):
        load_model(tiny_model.dir, CPU_ONLY)


def test_kubernetes_volume_links_inside_the_models_folder_load(tiny_model, tmp_path):
    mounted = tmp_path / "mounted"
    kubernetes_volume(mounted, tiny_model.dir, "2026_01_02_03_04_05.1")
    assert (mounted / MODEL_FILENAME).is_symlink() and (mounted / "..data").is_symlink()
    model = load_model(mounted, CPU_ONLY)
    assert model.config.model_version == tiny_model.version


def test_models_folder_that_is_itself_a_link_loads(tiny_model, tmp_path):
    (tmp_path / "linked").symlink_to(tiny_model.dir)
    assert load_model(tmp_path / "linked", CPU_ONLY).input_dim == tiny_model.dim
