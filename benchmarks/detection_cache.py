"""A JSON file of the baseline detectors' per-seed runs, so that a re-run fits only DataSentinel.

A run is keyed by what determines it: the CSV's content (sha256), the detector, the seed (which
fixes the split and the detector's randomness) and the test fraction. The dataset's name is not
part of the key, so a renamed or regenerated file with the same bytes reuses its runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from detection_report import Run

Key = tuple[str, str, int, float]  # (CSV sha256, detector, seed, test fraction)


class BaselineCache:
    """Runs by key, loaded from and saved to ``path``; with no path it only counts fits."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.runs: dict[str, dict] = {}
        if path is not None and path.exists():
            self.runs = json.loads(path.read_text())["runs"]
        self.fitted = 0
        self.reused = 0

    def run(self, key: Key, dataset: str, fit: Callable[[], Run]) -> Run:
        """The cached run for ``key`` under this dataset's name, or ``fit()``'s, then cached."""
        text_key = json.dumps(list(key))
        if text_key in self.runs:
            self.reused += 1
            return Run(**{**self.runs[text_key], "dataset": dataset})
        self.fitted += 1
        run = fit()
        self.runs[text_key] = {k: v for k, v in asdict(run).items() if k != "dataset"}
        return run

    def save(self) -> None:
        if self.path is None:
            return
        # Written aside and renamed, so an interrupted run never leaves half a file.
        partial = self.path.with_name(self.path.name + ".partial")
        partial.write_text(json.dumps({"runs": self.runs}, indent=1) + "\n")
        os.replace(partial, self.path)

    def describe(self) -> str:
        where = f" (cache {self.path})" if self.path else ""
        return f"baseline runs: {self.fitted} fitted, {self.reused} from the cache{where}"
