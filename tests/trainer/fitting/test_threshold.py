"""Where the threshold comes from (trainer/fitting/threshold.py): the validation scores when there
are enough of them, else out-of-fold scores (the validation split plus validation-sized folds of
the training rows, each scored by a throw-away model that never saw it), and a warning when few
rows lie above it whatever the source."""

from __future__ import annotations

import numpy as np
import pytest

from datasentinel.trainer.fitting.threshold import (
    MAX_EXTRA_FOLDS,
    VALIDATION_ROWS_ENOUGH,
    choose_threshold,
)

QUANTILE = 0.9


def _quantile(scores: np.ndarray, quantile: float) -> float:
    """The trainer's quantile: the Weibull plotting position (evaluation.threshold_at)."""
    return float(np.quantile(scores, quantile, method="weibull"))


class RecordingFits:
    """A fake fit_and_score that records which rows each fold model trained on and scored. Each
    row's feature 0 is its id; its score is its id, so the threshold shows which rows were
    scored."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[int], list[int]]] = []

    def __call__(self, train: np.ndarray, held_out: np.ndarray, seed: int) -> np.ndarray:
        self.calls.append(([int(i) for i in train[:, 0]], [int(i) for i in held_out[:, 0]]))
        return held_out[:, 0].astype(np.float64)

    def scored(self) -> list[int]:
        return [row for _, held_out in self.calls for row in held_out]


def _rows(first_id: int, n_rows: int) -> np.ndarray:
    """Rows whose feature 0 is their id, with a second feature beside it."""
    ids = np.arange(first_id, first_id + n_rows, dtype=np.float32)
    return np.column_stack([ids, np.ones(n_rows, dtype=np.float32)])


def _out_of_fold(n_train: int, n_validation: int) -> tuple[RecordingFits, object]:
    """choose_threshold on training rows 0.. and validation rows after them, whose scores (by
    the served model, which never trained on them) are their ids too."""
    train, validation = _rows(0, n_train), _rows(n_train, n_validation)
    fits = RecordingFits()
    threshold = choose_threshold(validation[:, 0], train, validation, QUANTILE, 0, fits)
    return fits, threshold


def test_fold_models_never_score_a_row_they_trained_on():
    fits, _ = _out_of_fold(480, 120)
    assert fits.calls
    for trained_on, scored in fits.calls:
        assert set(trained_on).isdisjoint(scored)
        assert len(trained_on) == 480  # as many rows as the served model: every other row


def test_out_of_fold_scores_every_row_once_when_the_folds_cover_the_training_rows():
    fits, threshold = _out_of_fold(480, 120)  # the default 20% validation split
    assert sorted(fits.scored()) == list(range(480))  # each training row once
    assert (threshold.source, threshold.rows) == ("out_of_fold", 600)
    # Every score is its row's id: the threshold is the quantile of all 600 rows, once each.
    assert threshold.value == pytest.approx(_quantile(np.arange(600), QUANTILE))


def test_out_of_fold_trains_at_most_the_extra_fold_cap():
    fits, threshold = _out_of_fold(2000, 100)
    assert len(fits.calls) == MAX_EXTRA_FOLDS
    assert all(len(scored) == 100 for _, scored in fits.calls)  # validation-sized folds
    assert len(set(fits.scored())) == MAX_EXTRA_FOLDS * 100
    assert threshold.rows == (MAX_EXTRA_FOLDS + 1) * 100


def _never_called(train: np.ndarray, held_out: np.ndarray, seed: int) -> np.ndarray:
    raise AssertionError("no fold model should be trained when the validation split is enough")


def _from_validation(quantile: float):
    scores = np.random.default_rng(0).lognormal(size=VALIDATION_ROWS_ENOUGH)
    validation = _rows(5000, VALIDATION_ROWS_ENOUGH)
    return scores, choose_threshold(scores, _rows(0, 5000), validation, quantile, 0, _never_called)


def test_enough_validation_rows_set_the_threshold_themselves():
    scores, threshold = _from_validation(QUANTILE)
    assert (threshold.source, threshold.rows) == ("validation", VALIDATION_ROWS_ENOUGH)
    assert threshold.value == _quantile(scores, QUANTILE)
    assert threshold.warnings == []


@pytest.mark.parametrize(
    ("quantile", "warned"),
    [(0.98, False), (0.989, False), (0.992, True), (0.999, True)],
    ids=["20-above", "11-above", "8-above", "1-above"],
)
def test_warns_when_fewer_than_10_rows_lie_above_the_threshold(quantile, warned):
    _, threshold = _from_validation(quantile)
    assert bool(threshold.warnings) is warned
    if warned:
        (warning,) = threshold.warnings
        assert f"only {VALIDATION_ROWS_ENOUGH} scores" in warning


def test_warns_on_out_of_fold_scores_too():
    _, threshold = _out_of_fold(48, 12)  # 60 rows at 0.9: 6 above
    assert threshold.source == "out_of_fold" and len(threshold.warnings) == 1
