import numpy as np
import onnxruntime as ort

from datasentinel import synthetic
from datasentinel.model_config import INPUT_NAME, SCORE_OUTPUT, load_config, sha256_file


def test_config_json_validates_with_the_shared_schema(tiny_run):
    assert load_config(tiny_run.config_path.parent) == tiny_run.config


def test_config_sha256_matches_model_file(tiny_run):
    assert load_config(tiny_run.config_path.parent).model_sha256 == sha256_file(tiny_run.model_path)


def test_config_names_the_synthetic_features(tiny_run):
    config = load_config(tiny_run.config_path.parent)
    assert config.input_dim == 8
    assert config.feature_names == synthetic.feature_names(8)


def test_threshold_is_the_quantile_of_onnx_validation_scores(tiny_run):
    config = load_config(tiny_run.config_path.parent)
    session = ort.InferenceSession(tiny_run.model_path, providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: tiny_run.validation.features})
    assert len(scores) == config.training.rows_validation == 300
    expected = np.quantile(scores, config.training.threshold_quantile)
    np.testing.assert_allclose(config.threshold, expected, rtol=1e-5)
