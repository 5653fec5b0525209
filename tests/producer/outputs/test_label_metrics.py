"""The producer's label metrics (numpy only) agree with scikit-learn's, ties included."""

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from datasentinel.producer.outputs.label_metrics import precision, recall, roc_auc
from datasentinel.producer.outputs.report import label_metrics


@pytest.mark.parametrize("seed", range(30))
def test_roc_auc_precision_recall_match_scikit_learn_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    labels = rng.integers(0, 2, n).astype(np.int8)
    labels[:2] = [0, 1]  # both classes
    # Few distinct scores, so many ties, within and across classes; float32 as the engine sends.
    scores = (rng.integers(0, 1 + seed % 7, n) + labels * rng.uniform(0, 2)).astype(np.float32)
    flags = rng.random(n) < 0.3
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert precision(labels, flags) == pytest.approx(precision_score(labels, flags))
    assert recall(labels, flags) == pytest.approx(recall_score(labels, flags))


def test_roc_auc_counts_a_tie_as_one_half():
    assert roc_auc(np.array([0, 1]), np.array([3.0, 3.0])) == 0.5
    assert roc_auc(np.array([0, 0, 1]), np.array([1.0, 2.0, 2.0])) == 0.75
    assert roc_auc(np.array([0, 1, 1]), np.array([5.0, 1.0, 2.0])) == 0.0


def test_one_class_has_no_roc_auc_and_nothing_flagged_has_zero_precision():
    labels = np.zeros(5, np.int8)
    assert roc_auc(labels, np.arange(5.0)) is None
    assert roc_auc(labels + 1, np.arange(5.0)) is None
    assert precision(np.array([1, 0]), np.array([False, False])) == 0.0
    assert recall(labels, np.ones(5, bool)) == 0.0


def test_label_metrics_summarise_the_answered_rows():
    labels = np.array([0, 0, 1, 1, 1], np.int8)
    m = label_metrics(labels, np.array([0.1, 0.9, 0.8, 0.7, 0.2]), np.array([0, 1, 1, 0, 0], bool))
    assert (m.rows, m.positives, m.precision) == (5, 3, 0.5)
    assert m.recall == pytest.approx(1 / 3) and m.roc_auc == pytest.approx(0.5)
