"""The detection benchmark's report maths, on made-up per-seed runs (no training)."""

from __future__ import annotations

import pytest

# benchmarks/ has no __init__.py; with the repository root on the path it imports as a namespace.
from benchmarks import detection_report as report


def run(detector: str, roc_auc: float, dataset: str = "d", seed: int = 0, **fields) -> report.Run:
    values = dict(rows=1000, pr_auc=0.5, precision=0.5, recall=0.5, f1=0.5, fit_s=0.1)
    values.update(flagged_share=0.02, expected_share=None)
    return report.Run(dataset, detector, seed, roc_auc=roc_auc, **{**values, **fields})


def test_tied_detectors_share_the_mean_of_their_ranks():
    assert report.ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.7}) == {
        "a": 1.5,
        "b": 3,
        "c": 1.5,
        "d": 4,
    }


def test_mean_rank_averages_the_per_dataset_ranks():
    means = {"one": {"a": 0.9, "b": 0.8}, "two": {"a": 0.7, "b": 0.7}}
    assert report.mean_ranks(means) == {"a": 1.25, "b": 1.75}


def test_gap_is_to_the_best_baseline_including_optional_ones():
    row = {"DataSentinel": 0.90, "IForest": 0.85, "LOF": 0.95}
    assert report.gap_to_best_baseline(row) == pytest.approx(-0.05)


def test_gap_is_none_without_datasentinel():
    assert report.gap_to_best_baseline({"IForest": 0.8, "ECOD": 0.9}) is None


def test_acceptance_counts_only_the_four_named_baselines():
    means = {
        "behind": {"DataSentinel": 0.90, "KNN": 0.931, "LOF": 0.99},
        "level": {"DataSentinel": 0.90, "KNN": 0.929, "LOF": 0.99},
    }
    assert [(name, best) for name, best, _ in report.lagging_datasets(means)] == [("behind", "KNN")]


def test_largest_gap_below_the_best_is_per_detector_over_datasets():
    means = {"one": {"a": 0.9, "b": 0.8}, "two": {"a": 0.6, "b": 0.9}}
    gaps = report.largest_gap_below_best(means)
    assert gaps == {"a": pytest.approx(0.3), "b": pytest.approx(0.1)}


def test_worst_dataset_names_the_lowest_mean():
    means = {"one": {"a": 0.9}, "two": {"a": 0.6}, "three": {"a": 0.7}}
    assert report.worst_dataset(means) == {"a": ("two", 0.6)}


def test_chance_seeds_are_those_strictly_below_point_six():
    runs = [run("DataSentinel", auc, seed=seed) for seed, auc in enumerate([0.59, 0.6, 0.95, 0.5])]
    assert report.chance_seeds(runs) == [0, 3]


def test_share_ratio_is_mean_flagged_share_over_configured_share():
    runs = [run("DataSentinel", 0.9, flagged_share=s, expected_share=0.02) for s in (0.02, 0.04)]
    assert report.share_ratio(runs) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("ratio", "rows", "off_target"),
    [
        (1.5, 300, False),
        (1.51, 300, True),
        (0.66, 300, True),
        (1 / 1.5, 300, False),
        (3, 299, False),
    ],
)
def test_share_is_judged_only_outside_the_tolerance_and_on_enough_rows(ratio, rows, off_target):
    assert report.share_off_target(ratio, rows) is off_target


def test_rank_verdict_says_who_leads_when_datasentinel_is_not_first():
    verdict = report.rank_verdict({"DataSentinel": 2.0, "ECOD": 1.5, "KNN": 2.5})
    assert verdict.startswith("DataSentinel's mean rank is not first") and "ECOD at 1.50" in verdict


def test_summary_bolds_the_best_detector_of_each_dataset():
    runs = [run("DataSentinel", 0.8), run("IForest", 0.9)]
    row = report.summary_table(report.group(runs))[2]
    assert row == "| d | 0.800 ± 0.000 | **0.900 ± 0.000** | -0.100 |"


def test_saved_runs_rebuild_the_same_report(tmp_path):
    runs = [run("DataSentinel", 0.8, expected_share=0.02), run("IForest", 0.9, seed=1)]
    report.save_runs(runs, tmp_path / "runs.json", {"seeds": 2})
    assert report.render(report.load_runs(tmp_path / "runs.json")) == report.render(runs)


def test_an_earlier_revision_is_timed_beside_but_not_ranked():
    ours = dict(expected_share=0.02)
    runs = [
        run("DataSentinel", 0.9, dataset="a", fit_s=2.0, **ours),
        run("DataSentinel@main", 0.95, dataset="a", fit_s=3.0, **ours),
        run("IForest", 0.8, dataset="a", fit_s=0.1),
        run("DataSentinel", 0.8, dataset="b", fit_s=4.0, **ours),
        run("DataSentinel@main", 0.8, dataset="b", fit_s=9.0, **ours),
        run("IForest", 0.7, dataset="b", fit_s=0.1),
    ]
    text = report.comparison(report.group(runs))
    assert "mean rank is first: 1.00" in text
    assert "| median |  | 3.00 | 6.00 | 0.10 |" in text
    assert "| slowest |  | 4.00 | 9.00 | 0.10 |" in text
    assert "| a | 0.950 ± 0.000 | 0.900 ± 0.000 | -0.050 |" in text
