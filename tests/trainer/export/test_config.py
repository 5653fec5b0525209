import numpy as np
import onnxruntime as ort

from datasentinel import synthetic
from datasentinel.model_config import INPUT_NAME, SCORE_OUTPUT, load_config, sha256_file
from datasentinel.severity import severity
from datasentinel.trainer.fitting.threshold import VALIDATION_ROWS_ENOUGH
from datasentinel.trainer.pipeline import train_and_export


def test_config_json_validates_with_the_shared_schema(tiny_run):
    assert load_config(tiny_run.config_path.parent) == tiny_run.config


def test_config_sha256_matches_model_file(tiny_run):
    assert load_config(tiny_run.config_path.parent).model_sha256 == sha256_file(tiny_run.model_path)


def test_config_names_the_synthetic_features(tiny_run):
    config = load_config(tiny_run.config_path.parent)
    assert config.input_dim == 8
    assert config.feature_names == synthetic.feature_names(8)


def test_small_validation_split_takes_the_threshold_from_out_of_fold_scores(tiny_run):
    training = load_config(tiny_run.config_path.parent).training
    assert training.rows_validation == 300 < VALIDATION_ROWS_ENOUGH
    assert training.threshold_source == "out_of_fold"
    assert training.threshold_rows == training.rows_train + training.rows_validation == 1500


def test_threshold_is_the_quantile_of_onnx_validation_scores(quick_settings):
    # 1250 rows, 80% held out: a validation split large enough to set the threshold itself.
    result = train_and_export(quick_settings(synthetic_rows=1250, validation_fraction=0.8))
    config = load_config(result.config_path.parent)
    session = ort.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: result.validation.features})
    assert len(scores) == config.training.rows_validation == VALIDATION_ROWS_ENOUGH
    assert config.training.threshold_source == "validation"
    assert config.training.threshold_rows == VALIDATION_ROWS_ENOUGH
    # The Weibull plotting position, as evaluation.threshold_at places it.
    expected = np.quantile(scores, config.training.threshold_quantile, method="weibull")
    np.testing.assert_allclose(config.threshold, expected, rtol=1e-5)


def test_training_threshold_is_the_threshold_chosen(tiny_run):
    config = load_config(tiny_run.config_path.parent)
    assert config.training.threshold == config.threshold > 0


def test_normalisation_is_the_first_groups_centre_and_scale(tiny_run):
    first = tiny_run.graph.groups[0]
    assert tiny_run.config.normalisation.centre == first.centre.tolist()
    assert tiny_run.config.normalisation.scale == first.scale.tolist()


def test_severity_table_comes_from_the_threshold_scores(tiny_run):
    config = load_config(tiny_run.config_path.parent)
    table, training = config.severity, config.training
    assert (table.rows, table.source) == (training.threshold_rows, training.threshold_source)
    assert np.all(np.diff(table.scores) >= 0) and np.all(np.diff(table.levels) >= 0)
    # The threshold is the quantile of the same scores: its severity is about that quantile.
    (level,) = severity([config.threshold], table)
    assert abs(level - training.threshold_quantile) < 0.01


def test_severity_of_validation_scores_rises_with_the_score(tiny_run):
    scores = np.sort(tiny_run.validation_scores)
    levels = severity(scores, tiny_run.config.severity)
    assert np.all(np.diff(levels) >= 0) and levels[0] < 0.1 and levels[-1] > 0.9
