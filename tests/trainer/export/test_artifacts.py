import os

from datasentinel.model_config import CONFIG_FILENAME, MODEL_FILENAME, load_config
from datasentinel.trainer.export.artifacts import write_artifacts
from datasentinel.trainer.report.plots import LOSS_PLOT, SCORES_PLOT


def test_models_dir_holds_only_the_artifacts(tiny_run):
    names = set(os.listdir(tiny_run.model_path.parent))
    assert names == {MODEL_FILENAME, CONFIG_FILENAME, LOSS_PLOT, SCORES_PLOT}


def test_rewriting_replaces_both_files_and_leaves_no_temporaries(tiny_run, tmp_path):
    (tmp_path / MODEL_FILENAME).write_bytes(b"old model")
    (tmp_path / CONFIG_FILENAME).write_text("{}")
    model_bytes = tiny_run.model_path.read_bytes()
    write_artifacts(model_bytes, tiny_run.config, tmp_path)
    assert (tmp_path / MODEL_FILENAME).read_bytes() == model_bytes
    assert load_config(tmp_path) == tiny_run.config
    assert sorted(os.listdir(tmp_path)) == sorted([MODEL_FILENAME, CONFIG_FILENAME])
