"""A small CSV end to end: its threshold comes from out-of-fold scores of all its rows, and means
on unseen rows what the quantile asks for."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from datasentinel import synthetic
from datasentinel.model_config import INPUT_NAME, SCORE_OUTPUT, load_config
from datasentinel.trainer.pipeline import TrainingResult, train_and_export
from datasentinel.trainer.settings import TrainerSettings

CSV_ROWS = 600
UNSEEN_ROWS = 3000
QUANTILE = 0.95
# Measured over seeds 0-15 (10 epochs, as here; small tables train in batches of 120 since
# issue 19), share of unseen rows flagged for 5% asked: out-of-fold thresholds mean 5.3%, range
# 2.7-8.5% (2 of 16 seeds outside 5% / 1.5 .. 5% * 1.5); the 0.95 quantile of the 120 validation
# rows alone 1.2-11.4%, 9 of 16 seeds outside. Seeds 11 and 14 are two of those nine, one above
# and one below (validation alone: 8.2% and 1.2%; out-of-fold: 4.4% and 4.1%), so this test fails
# if the small-data threshold falls back to the validation split.
SEEDS = [11, 14]


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed-{seed}" for seed in SEEDS])
def small_csv_run(request, tmp_path_factory) -> tuple[TrainingResult, np.ndarray]:
    """A model trained on a 600-row CSV, and 3000 unseen rows of the same distribution (one
    synthetic series, its rows shuffled and cut in two)."""
    seed = request.param
    tmp = tmp_path_factory.mktemp("small_csv")
    data = synthetic.generate(CSV_ROWS + UNSEEN_ROWS, seed=seed)
    order = np.random.default_rng(seed).permutation(len(data.features))
    rows, unseen = data.features[order[:CSV_ROWS]], data.features[order[CSV_ROWS:]]
    path = tmp / "small.csv"
    pd.DataFrame(rows, columns=data.feature_names).to_csv(path, index=False)
    settings = TrainerSettings(
        data=path,
        models_dir=tmp / "models",
        threshold_quantile=QUANTILE,
        seed=seed,
        epochs=10,
        progress=False,
        plots=False,
    )
    return train_and_export(settings), unseen


def test_small_csv_threshold_comes_from_out_of_fold_scores_of_every_row(small_csv_run):
    result, _ = small_csv_run
    training = load_config(result.config_path.parent).training
    assert training.threshold_source == "out_of_fold"
    assert training.threshold_rows == training.rows_train + training.rows_validation == CSV_ROWS


def test_small_csv_threshold_flags_about_the_asked_share_of_unseen_rows(small_csv_run):
    result, unseen = small_csv_run
    session = ort.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: unseen})
    flagged = float((scores > result.config.threshold).mean())
    # Within a factor 1.5 either way: the 0.95 quantile of 600 scores alone varies by about
    # +-0.9% (one sd), the fold models' differences add to it (see SEEDS).
    expected = 1 - QUANTILE
    assert expected / 1.5 <= flagged <= expected * 1.5, flagged
