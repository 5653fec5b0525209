"""How the scoring graph combines its three components (two autoencoder groups and the tail
table): each calibrated to its median training row, the score the largest component mean, the
feature errors that component's terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasentinel.trainer.detector.graph import build_scoring_graph, calibrate

# Odd, so the median training row is one row and calibration can be checked exactly.
TRAIN_ROWS = 301


@pytest.fixture(scope="module")
def calibrated():
    """An untrained (calibration needs no training), calibrated graph; its training rows; and
    rows to score: the training rows plus some scaled up and some with noise added."""
    rng = np.random.default_rng(0)
    plane = rng.normal(size=(TRAIN_ROWS, 2)) @ rng.normal(size=(2, 5))
    train = (plane + 0.1 * rng.normal(size=plane.shape)).astype(np.float32)
    torch.manual_seed(0)
    graph = build_scoring_graph(train, [8], 2, members=3).eval()
    calibrate(graph, train)
    noisy = train[:20] + rng.normal(size=(20, 5)).astype(np.float32)
    return graph, train, torch.from_numpy(np.concatenate([train, 3 * train[:20], noisy]))


def _outputs(graph, rows):
    with torch.no_grad():
        score, errors, _ = graph(rows)
        return score, errors, graph.component_errors(rows)


def test_score_is_the_mean_of_the_feature_errors(calibrated):
    graph, _, rows = calibrated
    score, errors, _ = _outputs(graph, rows)
    torch.testing.assert_close(score, errors.mean(dim=1))


def test_score_is_the_largest_component_mean(calibrated):
    graph, _, rows = calibrated
    score, _, components = _outputs(graph, rows)
    means = components.mean(dim=2)  # [rows, components]
    assert len(means.argmax(dim=1).unique()) == 3  # every component wins some rows here
    torch.testing.assert_close(score, means.max(dim=1).values)


def test_feature_errors_are_the_winning_components_terms(calibrated):
    graph, _, rows = calibrated
    _, errors, components = _outputs(graph, rows)
    winner = components.mean(dim=2).argmax(dim=1)
    torch.testing.assert_close(errors, components[torch.arange(len(rows)), winner])


def test_calibration_puts_each_components_median_training_row_at_one(calibrated):
    graph, train, _ = calibrated
    _, _, components = _outputs(graph, torch.from_numpy(train))
    medians = components.mean(dim=2).median(dim=0).values
    torch.testing.assert_close(medians, torch.ones(3))
    # Not 1 already before calibration: the components come in different units.
    assert float((graph.component_scale - 1).abs().max()) > 0.05
