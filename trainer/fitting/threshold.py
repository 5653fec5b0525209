"""Where the anomaly threshold comes from: enough held-out scores that its quantile means something.

A 0.98 quantile of a validation split of 18 rows is its largest value or thereabouts: on a
148-row set the share of unseen rows flagged ranged from 0% to 22% where 2% was asked for. When
the validation split is small, the threshold is instead the quantile of **out-of-fold** scores
(cross-fitting): the validation split is one fold, already scored by the served model; the
training rows are cut into up to MAX_EXTRA_FOLDS more folds of the same size, and for each a
throw-away model is trained on every other row and scores it. Every such model trains on as
many rows, for as many epochs, as the served model did: its scores are only a stand-in for the
served model's if it was trained the same way. (Fold models trained on 2/3 of the rows for the
same epochs, i.e. fewer steps, put satellite's threshold at 18 where the served model's unseen
rows needed 26: 8% of them flagged for 2% asked.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from datasentinel.trainer.report.evaluation import threshold_at

log = logging.getLogger(__name__)

# A validation split this large holds about 20 rows above a 0.98 quantile: its quantile is
# steady enough (the benchmark's flagged-share check) and cross-fitting would only cost time.
VALIDATION_ROWS_ENOUGH = 1000
MAX_EXTRA_FOLDS = 4
# Fewer rows than this expected above the threshold and it is rough whatever the method.
MIN_ROWS_ABOVE = 10

# (training rows, held-out rows, seed) -> scores of the held-out rows by a model fitted on the
# training rows alone.
FitAndScore = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class Threshold:
    """The threshold, and the held-out scores its quantile was taken from (``rows`` of them;
    the severity table is read off the same scores)."""

    value: float
    source: Literal["validation", "out_of_fold"]
    rows: int
    warnings: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))


def choose_threshold(
    validation_scores: np.ndarray,
    train_features: np.ndarray,
    validation_features: np.ndarray,
    quantile: float,
    seed: int,
    fit_and_score: FitAndScore,
) -> Threshold:
    """The ``quantile`` of the validation scores when there are VALIDATION_ROWS_ENOUGH of them,
    else of out-of-fold scores (out_of_fold_scores)."""
    if len(validation_scores) >= VALIDATION_ROWS_ENOUGH:
        scores, source = validation_scores, "validation"
    else:
        scores = out_of_fold_scores(
            validation_scores, train_features, validation_features, seed, fit_and_score
        )
        source = "out_of_fold"
        log.info("threshold from out-of-fold scores of %d rows", len(scores))
    warnings = _too_few_warning(len(scores), quantile)
    return Threshold(threshold_at(scores, quantile), source, len(scores), warnings, scores)


def out_of_fold_scores(
    validation_scores: np.ndarray,
    train_features: np.ndarray,
    validation_features: np.ndarray,
    seed: int,
    fit_and_score: FitAndScore,
) -> np.ndarray:
    """The validation scores, then for each extra fold (validation-sized, from the training
    rows) the scores of a model trained on every other row (the validation rows included)."""
    size = len(validation_scores)
    extra = min(MAX_EXTRA_FOLDS, len(train_features) // size)
    order = np.random.default_rng(seed).permutation(len(train_features))
    scores = [np.asarray(validation_scores, dtype=np.float64)]
    for fold in range(extra):
        held_out = order[fold * size : (fold + 1) * size]
        kept = np.ones(len(train_features), dtype=bool)
        kept[held_out] = False
        rows = np.concatenate([validation_features, train_features[kept]])
        scores.append(fit_and_score(rows, train_features[held_out], seed + 1 + fold))
    return np.concatenate(scores)


def _too_few_warning(rows: int, quantile: float) -> list[str]:
    above = rows * (1 - quantile)
    if above >= MIN_ROWS_ABOVE:
        return []
    return [
        f"the threshold is the {quantile:g} quantile of only {rows} scores, so about "
        f"{above:.1f} rows lie above it: it is a rough guess: train on more rows, "
        "or check the threshold against scores of data you know"
    ]
