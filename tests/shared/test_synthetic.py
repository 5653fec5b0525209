"""The built-in data: reproducible, correlated, with the labelled anomalies promised."""

import numpy as np

from datasentinel.synthetic import SyntheticSpec, generate


def test_same_seed_same_rows_other_seed_other_rows():
    a, b, c = generate(500, seed=3), generate(500, seed=3), generate(500, seed=4)
    np.testing.assert_array_equal(a.features, b.features)
    assert not np.allclose(a.features, c.features)


def test_anomaly_fraction_and_shapes():
    data = generate(5000, seed=1)
    assert data.features.shape == (5000, 8) and data.features.dtype == np.float32
    assert data.labels.sum() == 100
    assert data.feature_names[0] == "sensor_00" and len(data.feature_names) == 8


def test_sensors_share_the_plant_across_seeds():
    """Trainer and producer use different seeds; the sensor relationships must be the same."""
    a, b = generate(5000, seed=0), generate(5000, seed=1)
    corr_a = np.corrcoef(a.features[a.labels == 0].T)
    corr_b = np.corrcoef(b.features[b.labels == 0].T)
    assert np.abs(corr_a - corr_b).max() < 0.25
    assert np.abs(corr_a[np.triu_indices(8, 1)]).max() > 0.8


def test_anomalies_lie_off_the_normal_subspace():
    """Normal rows are (nearly) a 3-driver mixture; anomalies break it, so a linear projection on
    the normal rows' top components must leave them a much larger residual."""
    data = generate(5000, seed=2)
    z = (data.features - data.features.mean(0)) / data.features.std(0)
    _, _, vt = np.linalg.svd(z[data.labels == 0], full_matrices=False)
    basis = vt[: SyntheticSpec().n_drivers]
    residual = ((z - z @ basis.T @ basis) ** 2).sum(1)
    assert np.median(residual[data.labels == 1]) > 20 * np.median(residual[data.labels == 0])
