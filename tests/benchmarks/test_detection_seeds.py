"""detection.py's seeds: a run of later seeds adds exactly the splits a longer run would have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyod")

from benchmarks import detection  # noqa: E402
from benchmarks.detection_cache import BaselineCache  # noqa: E402


def labelled_csv(path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    frame["label"] = (np.arange(80) % 10 == 0).astype(int)
    frame.loc[frame["label"] == 1, "a"] += rng.normal(0, 3, size=8)
    frame.to_csv(path / "toy.csv", index=False)
    return path / "toy.csv"


def ecod_runs(path: Path, seeds: range) -> dict[int, float]:
    runs = detection.benchmark(path, "label", seeds, ["ECOD"], {}, BaselineCache(None), {})
    return {run.seed: run.roc_auc for run in runs}


def test_later_seeds_alone_give_the_splits_of_a_longer_run(tmp_path):
    path = labelled_csv(tmp_path)
    later = ecod_runs(path, range(3, 5))
    assert list(later) == [3, 4]
    assert later == {seed: auc for seed, auc in ecod_runs(path, range(5)).items() if seed >= 3}
