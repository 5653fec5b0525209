"""The synthetic development suite (benchmarks/suite.py): reproducible, labelled as promised, and
each dataset really has the feature kind it is there to probe."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from benchmarks import suite


@functools.cache
def dataset(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return suite.SUITE[name](suite.generator_for(seed, name))


def normal_rows(name: str) -> np.ndarray:
    features, labels = dataset(name)
    return features[labels == 0]


def iqr(rows: np.ndarray) -> np.ndarray:
    q25, q75 = np.percentile(rows, [25, 75], axis=0)
    return q75 - q25


@pytest.mark.parametrize("name", list(suite.SUITE))
def test_same_seed_same_data_other_seed_other_data(name):
    again = suite.SUITE[name](suite.generator_for(0, name))
    np.testing.assert_array_equal(dataset(name)[0], again[0])
    np.testing.assert_array_equal(dataset(name)[1], again[1])
    assert not np.array_equal(dataset(name)[0], dataset(name, seed=1)[0])


@pytest.mark.parametrize("name", list(suite.SUITE))
def test_shapes_labels_and_anomaly_share(name):
    features, labels = dataset(name)
    assert features.dtype == np.float64 and np.isfinite(features).all()
    assert labels.dtype.kind == "i" and set(np.unique(labels)) == {0, 1}
    assert 150 <= len(labels) <= 50_000 and features.shape[0] == len(labels)
    assert 0.02 <= labels.mean() <= 0.10


def test_digits_are_small_integer_counts_many_with_iqr_zero():
    for name in ("digits_newclass", "digits_local"):
        features, _ = dataset(name)
        assert features.shape[1] == 64
        assert np.array_equal(features, np.round(features))
        assert features.min() == 0 and features.max() == suite.COUNT_MAX
        assert (iqr(normal_rows(name)) == 0).sum() >= 10


def test_medical_has_near_constant_flags_and_labs_of_very_different_scales():
    rows = normal_rows("medical_mixed")
    labs, flags = rows[:, :6], rows[:, 6:]
    assert flags.shape[1] == 15 and set(np.unique(flags)) == {0.0, 1.0}
    assert (iqr(flags) == 0).all() and (flags.mean(0) < 0.25).all()
    medians = np.median(labs, axis=0)
    assert (labs > 0).all() and medians.max() / medians.min() > 1e4


def test_medical_anomalies_reach_both_tails():
    features, labels = dataset("medical_mixed")
    low, high = np.percentile(normal_rows("medical_mixed")[:, :6], [1, 99], axis=0)
    anomalies = features[labels == 1, :6]
    assert (anomalies < low).any(axis=1).sum() >= 20
    assert (anomalies > high).any(axis=1).sum() >= 20


def test_image_is_wide_in_unit_range_and_mostly_exact_zeros():
    features, _ = dataset("image_blobs")
    assert features.shape[1] == 100
    assert features.min() == 0.0 and features.max() <= 1.0
    assert (features == 0).mean() > 0.5


def test_tiny_set_is_small_and_mostly_binary_or_small_categories():
    features, labels = dataset("tiny_categorical")
    assert len(labels) < 200 and labels.sum() == 6
    levels = [set(np.unique(column)) for column in features.T]
    assert sum(level <= {0.0, 1.0} for level in levels) >= 12
    assert all(level <= {0.0, 1.0, 2.0, 3.0, 4.0} for level in levels)


def test_heavy_tails_span_1e_minus_3_to_1e6():
    rows = normal_rows("heavy_tail_dependency")
    typical = np.median(np.abs(rows), axis=0)
    assert typical.min() < 1e-2 and typical.max() > 1e5
    # Heavy tails: the largest value is far beyond the typical one in every feature.
    assert (np.abs(rows).max(0) > 20 * typical).all()


def strongest_rank_correlation(rows: np.ndarray) -> float:
    rho = np.abs(spearmanr(rows).statistic)
    np.fill_diagonal(rho, 0.0)
    return float(rho.max())


@pytest.mark.parametrize("name", ["heavy_tail_dependency", "manifold_dependency"])
def test_dependency_anomalies_keep_the_marginals_but_lose_the_dependence(name):
    features, labels = dataset(name)
    normal, anomalies = features[labels == 0], features[labels == 1]
    assert strongest_rank_correlation(normal) > 0.8
    assert strongest_rank_correlation(anomalies) < 0.45
    # Each value alone looks normal: anomalies sit inside the normal range, feature by feature.
    low, high = np.percentile(normal, [0.5, 99.5], axis=0)
    assert ((anomalies >= low) & (anomalies <= high)).mean() > 0.95


def test_wide_set_has_over_100_features():
    features, _ = dataset("wide_sparse_signal")
    assert features.shape[1] >= 100


def test_write_suite_writes_shuffled_csvs_with_a_label_column(tmp_path):
    names = ["tiny_categorical", "gmm_global"]
    paths = suite.write_suite(tmp_path, seed=0, names=names)
    assert paths == [tmp_path / f"{name}.csv" for name in names]
    for name, path in zip(names, paths, strict=True):
        frame = pd.read_csv(path)
        features, labels = dataset(name)
        assert list(frame.columns) == [f"f{j}" for j in range(features.shape[1])] + ["label"]
        assert frame["label"].sum() == labels.sum() and len(frame) == len(labels)
        assert not frame["label"].is_monotonic_increasing  # shuffled, anomalies not all last
        np.testing.assert_allclose(
            np.sort(frame.drop(columns="label").to_numpy(), axis=0), np.sort(features, axis=0)
        )


def test_cli_prints_one_line_per_dataset(tmp_path, capsys):
    suite.main([str(tmp_path), "--only", "tiny_categorical", "gmm_local"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["tiny_categorical", "gmm_local"]
    assert "150 x 18" in lines[0] and "(4.0%)" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gmm_local.csv", "tiny_categorical.csv"]


def test_a_dataset_does_not_depend_on_which_others_are_written(tmp_path):
    alone = suite.write_suite(tmp_path / "alone", names=["gmm_global"])[0]
    suite.write_suite(tmp_path / "both", names=["tiny_categorical", "gmm_global"])
    assert alone.read_bytes() == (tmp_path / "both" / "gmm_global.csv").read_bytes()


def test_large_magnitude_has_integer_glitches_hundreds_of_spreads_out():
    rows = normal_rows("large_magnitude")
    assert rows.shape[1] == 9 and np.array_equal(rows, np.round(rows))
    assert (np.abs(rows - np.median(rows, axis=0)).max(axis=0) > 100 * iqr(rows)).all()
    np.testing.assert_array_equal(rows[:, 6], rows[:, 2] - rows[:, 0])
