import numpy as np
import pytest
import torch

from datasentinel.trainer.detector.graph import (
    ERROR_KNEE,
    build_scoring_graph,
    default_hidden_dims,
    default_latent_dim,
    latent_widths,
    soften,
)
from datasentinel.trainer.detector.scaling import robust_scaling


def test_constant_feature_gets_unit_std():
    features = np.column_stack([np.full(20, 3.7), np.arange(20.0)]).astype(np.float32)
    mean, std = robust_scaling(features)
    assert std[0] == 1.0 and mean[0] == pytest.approx(3.7)


@pytest.mark.parametrize("input_dim", [1, 2, 3, 8, 50])
def test_default_latent_is_a_bottleneck(input_dim):
    latent = default_latent_dim(input_dim)
    assert 1 <= latent < max(input_dim, 2)
    assert default_hidden_dims(input_dim)[0] >= input_dim


@pytest.mark.parametrize("group_index", [0, 1], ids=["robust-group", "spread-group"])
def test_group_feature_errors_are_its_softened_squared_error(group_index):
    features = np.random.default_rng(0).normal(10, 5, size=(30, 4)).astype(np.float32)
    group = build_scoring_graph(features, [8], 2).groups[group_index]
    with torch.no_grad():
        errors = group.feature_errors(torch.from_numpy(features))
        z = (torch.from_numpy(features) - group.centre) / group.scale
        squared = (z - group.autoencoder(z)) ** 2
        expected = (ERROR_KNEE * torch.log1p(squared / ERROR_KNEE)).mean(dim=0)
    torch.testing.assert_close(errors, expected)


def test_default_latent_is_capped_on_wide_data():
    assert default_latent_dim(8) == 4
    assert default_latent_dim(274) == 8


@pytest.mark.parametrize(
    ("widest", "members", "expected"),
    [
        (8, 1, [8]),
        (8, 2, [1, 8]),
        (8, 3, [1, 3, 8]),
        (8, 5, [1, 1, 2, 3, 8]),
        (2, 5, [1, 1, 2, 2, 2]),
    ],
)
def test_latent_widths_weight_the_narrow_end(widest, members, expected):
    assert latent_widths(widest, members) == expected


def test_soften_is_linear_below_the_knee_and_logarithmic_above():
    errors = torch.tensor([0.0, 0.01, ERROR_KNEE, 100 * ERROR_KNEE])
    softened = soften(errors)
    assert softened[0] == 0 and softened[1] == pytest.approx(0.01, rel=1e-3)
    assert bool((softened.diff() > 0).all())
    assert softened[3] < 5 * ERROR_KNEE
