"""How the scoring graph combines its three components (two autoencoder groups and the tail
table): each put in units of its spread of typical training rows (median -> 0, 80th percentile
-> 1), the score 1 + the mean surprise of the two most surprised, the feature errors the mean of
those two components' terms."""

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


def _surprises(graph, components):
    """Each component's surprise per row: its row mean less its offset, ``[rows, components]``."""
    return components.mean(dim=2) - graph.component_offset


def test_score_is_one_plus_the_mean_of_the_two_largest_surprises(calibrated):
    graph, _, rows = calibrated
    score, _, components = _outputs(graph, rows)
    surprises = _surprises(graph, components)
    assert len(surprises.argmin(dim=1).unique()) == 3  # every component is left out somewhere
    top_two = surprises.topk(2, dim=1).values.mean(dim=1)
    torch.testing.assert_close(score, (1 + top_two).clamp_min(0))


def test_feature_errors_are_the_two_components_mean_terms(calibrated):
    graph, _, rows = calibrated
    _, errors, components = _outputs(graph, rows)
    chosen = _surprises(graph, components).topk(2, dim=1).indices
    want = components[torch.arange(len(rows))[:, None], chosen].mean(dim=1)
    torch.testing.assert_close(errors, want)
    assert bool((errors >= 0).all())


def test_calibration_puts_the_median_training_row_at_0_and_the_80th_percentile_at_1(calibrated):
    graph, train, _ = calibrated
    _, _, components = _outputs(graph, torch.from_numpy(train))
    surprises = _surprises(graph, components)
    torch.testing.assert_close(surprises.median(dim=0).values, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        torch.quantile(surprises, 0.8, dim=0), torch.ones(3), atol=1e-4, rtol=0
    )
    # A typical training row scores about 1.
    score, _, _ = _outputs(graph, torch.from_numpy(train))
    assert 0.8 < float(score.median()) < 1.6
