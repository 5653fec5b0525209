"""The anomaly threshold and, when labels exist, how well the scores separate the anomalies."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_score, recall_score, roc_auc_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """On the validation split: ROC-AUC of the score, precision and recall of score > threshold."""

    roc_auc: float
    precision: float
    recall: float


def threshold_at(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the validation scores: about ``1 - quantile`` of rows like the
    validation data will be flagged."""
    return float(np.quantile(scores, quantile))


def evaluate(scores: np.ndarray, labels: np.ndarray | None, threshold: float) -> Evaluation | None:
    """None without labels, or when the split holds only one class (ROC-AUC is then undefined)."""
    if labels is None:
        return None
    if len(np.unique(labels)) < 2:
        log.warning("the validation split holds only one class: no ROC-AUC, precision or recall")
        return None
    flagged = scores > threshold
    return Evaluation(
        roc_auc=float(roc_auc_score(labels, scores)),
        precision=float(precision_score(labels, flagged, zero_division=0)),
        recall=float(recall_score(labels, flagged, zero_division=0)),
    )
