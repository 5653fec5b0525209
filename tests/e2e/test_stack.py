"""The whole stack as a user runs it: trainer, then the engine on its artifacts, then the producer,
each a real process, the engine on a free port."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from datasentinel.synthetic import generate
from tests.conftest import read_csv_rows, run_module

# Detection bar on unseen built-in data, for a small training run (6,000 rows). Measured: ROC-AUC
# 1.00, precision ~0.86, recall ~1.0 at the default 0.98 quantile. An untrained model, or one
# served with the wrong standardisation, ranks barely better than the sensors' own z-scores
# (ROC-AUC ~0.8), so 0.97 separates "works" from "broken" with room for seed-to-seed noise.
MIN_ROC_AUC = 0.97
MIN_RECALL = 0.8
MIN_PRECISION = 0.6


run = run_module


def train(models_dir, *args):
    result = run("trainer", "--models-dir", models_dir, "--no-plots", *args)
    assert result.returncode == 0, result.stderr
    return result


def produce(engine, *args):
    return run("producer", "--engine-host", "127.0.0.1", "--engine-port", engine.port, *args)


read_results = read_csv_rows


@pytest.fixture(scope="module")
def synthetic_models(tmp_path_factory):
    models_dir = tmp_path_factory.mktemp("synthetic-models")
    train(models_dir, "--synthetic-rows", 6000)
    return models_dir


def test_default_data_every_vector_answered_and_anomalies_found(
    synthetic_models, start_engine, tmp_path
):
    engine = start_engine(synthetic_models)
    output = tmp_path / "results.csv"
    result = produce(engine, "--count", 3000, "--batch-size", 100, "--output", output)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_results(output)
    assert [int(r["id"]) for r in rows] == list(range(3000))
    labels = np.array([int(r["label"]) for r in rows])
    np.testing.assert_array_equal(labels, generate(3000, seed=1).labels)
    scores = np.array([float(r["score"]) for r in rows])
    flagged = np.array([r["is_anomaly"] == "1" for r in rows])
    assert roc_auc_score(labels, scores) >= MIN_ROC_AUC
    assert (flagged & (labels == 1)).sum() / labels.sum() >= MIN_RECALL
    assert (flagged & (labels == 1)).sum() / flagged.sum() >= MIN_PRECISION
    assert "answered     3000" in result.stdout


def test_one_vector_per_message_answers_every_id(synthetic_models, start_engine, tmp_path):
    engine = start_engine(synthetic_models)
    output = tmp_path / "results.csv"
    result = produce(engine, "--count", 300, "--batch-size", 1, "--output", output)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [int(r["id"]) for r in read_results(output)] == list(range(300))


def write_csv(path, seed, rows):
    data = generate(rows, seed=seed)
    frame = pd.DataFrame(data.features, columns=data.feature_names)
    frame.insert(3, "label", data.labels)  # not last: the label is found by name
    frame.to_csv(path, index=False)
    return data


def test_csv_train_then_score_a_whole_file(start_engine, tmp_path):
    write_csv(tmp_path / "F.csv", seed=11, rows=5000)
    scored = write_csv(tmp_path / "G.csv", seed=12, rows=1234)
    models_dir = tmp_path / "D"
    training = train(models_dir, "--data", tmp_path / "F.csv", "--label-column", "label")
    assert "ROC-AUC" in training.stdout
    engine = start_engine(models_dir)
    output = tmp_path / "R.csv"
    result = produce(
        engine, "--csv", tmp_path / "G.csv", "--label-column", "label", "--output", output
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_results(output)
    assert list(rows[0])[:3] == ["id", "score", "is_anomaly"]
    assert list(rows[0])[-2:] == ["label", "error"]
    assert len(rows) == 1234
    assert [int(r["label"]) for r in rows] == scored.labels.tolist()


def test_producer_refuses_a_csv_of_the_wrong_width(synthetic_models, start_engine, tmp_path):
    engine = start_engine(synthetic_models)
    narrow = tmp_path / "narrow.csv"
    pd.DataFrame(np.ones((5, 3)), columns=["a", "b", "c"]).to_csv(narrow, index=False)
    result = produce(engine, "--csv", narrow)
    assert result.returncode == 2
    assert "lacks the model's feature column(s)" in result.stderr
    assert "the file's columns: 'a', 'b', 'c'" in result.stderr
