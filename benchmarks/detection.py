"""Detection quality: DataSentinel's trainer vs PyOD's detectors on labelled CSVs.

    python benchmarks/detection.py ../shared/data/odds/*.csv --suite --seeds 5 \\
        --json runs.json --baseline-cache baselines.json

The usual protocol (PyOD benchmark, ADBench): for each seed, a random 60/40 split; each detector
is fitted on the 60% with its anomalies still in it (labels unused for fitting) and scores the
40%. DataSentinel trains through ``train_and_export`` (the code path of ``datasentinel-train``) on
the 60% written to a CSV, and the 40% is scored by ONNX Runtime on the exported model.onnx, the
artifact the engine serves; its flags come from config.json's threshold. The baselines are PyOD
detectors with default settings (``random_state=seed`` where they take one) fitted on the same
rows; their scores are ``decision_function``, their flags ``predict``. ``--suite`` adds the
synthetic development suite (``benchmarks/suite.py``). ``--baseline-cache`` keeps the baselines'
runs so that re-running while DataSentinel changes refits only DataSentinel. ``--set key=value``
overrides a trainer setting (for ablations; the reported table uses none). ``--before REV`` also
runs the trainer of git revision REV (``DataSentinel@REV``, in a subprocess, from this
environment: benchmarks/baseline.py) on the same splits, so fit times and scores before and after
a change are measured side by side in one run. ``--first-seed 3 --seeds 2`` runs only splits 3
and 4, the ones a 5-seed run adds to a 3-seed one. The tables are made by
``benchmarks/detection_report.py``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import inspect
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split

from datasentinel.model_config import INPUT_NAME, SCORE_OUTPUT, load_config
from datasentinel.trainer.pipeline import train_and_export
from datasentinel.trainer.settings import TrainerSettings

# benchmarks/ is a folder of scripts, not a package: its sibling modules import by file name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import baseline_env  # noqa: E402
from detection_cache import BaselineCache  # noqa: E402
from detection_report import (  # noqa: E402
    BEFORE_PREFIX,
    DATASENTINEL,
    Run,
    comparison,
    detail_table,
    group,
    save_runs,
)

TEST_FRACTION = 0.4
# PyOD class per detector name: (module, class).
BASELINES = {
    "IForest": ("pyod.models.iforest", "IForest"),
    "ECOD": ("pyod.models.ecod", "ECOD"),
    "HBOS": ("pyod.models.hbos", "HBOS"),
    "KNN": ("pyod.models.knn", "KNN"),
    "COPOD": ("pyod.models.copod", "COPOD"),
    "LOF": ("pyod.models.lof", "LOF"),
}
DEFAULT_DETECTORS = "DataSentinel,IForest,ECOD,HBOS,KNN"


@dataclass(frozen=True)
class Split:
    """One seed's 60/40 split of one dataset."""

    dataset: str
    seed: int
    rows: int
    train: pd.DataFrame
    test: pd.DataFrame
    label: str

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        # C order, the layout the warm-up compiled PyOD's numba code for (pandas gives F order).
        return np.ascontiguousarray(frame.drop(columns=[self.label]).to_numpy(dtype=np.float32))

    @property
    def labels(self) -> np.ndarray:
        return self.test[self.label].to_numpy()


def score_run(
    split: Split,
    detector: str,
    scores: np.ndarray,
    flagged: np.ndarray,
    fit_s: float,
    expected_share: float | None = None,
) -> Run:
    precision, recall, f1, _ = precision_recall_fscore_support(
        split.labels, flagged, average="binary", zero_division=0
    )
    return Run(
        dataset=split.dataset,
        detector=detector,
        seed=split.seed,
        rows=split.rows,
        roc_auc=float(roc_auc_score(split.labels, scores)),
        pr_auc=float(average_precision_score(split.labels, scores)),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        fit_s=fit_s,
        flagged_share=float(np.mean(flagged)),
        expected_share=expected_share,
    )


def run_datasentinel(split: Split, overrides: dict[str, str]) -> Run:
    """Trains exactly as ``datasentinel-train --data train.csv --label-column label`` would."""
    with tempfile.TemporaryDirectory(prefix="detection-") as tmp:
        csv_path = Path(tmp) / "train.csv"
        split.train.to_csv(csv_path, index=False)
        settings = TrainerSettings(
            data=csv_path,
            label_column=split.label,
            models_dir=Path(tmp) / "models",
            seed=split.seed,
            plots=False,
            progress=False,
            **overrides,
        )
        started = time.perf_counter()
        result = train_and_export(settings)
        fit_s = time.perf_counter() - started
        config = load_config(settings.models_dir)
        session = ort.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: split.features(split.test)})
    flagged = scores > config.threshold
    expected_share = 1 - config.training.threshold_quantile
    return score_run(split, DATASENTINEL, scores, flagged, fit_s, expected_share)


# Run in a subprocess whose PYTHONPATH holds an earlier revision's package (baseline_env): that
# revision's train_and_export, timed as run_datasentinel times this one's.
BEFORE_SCRIPT = """
import json, sys, time
from pathlib import Path
from datasentinel.trainer.pipeline import train_and_export
from datasentinel.trainer.settings import TrainerSettings
data, models, seed, label = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
settings = TrainerSettings(data=Path(data), label_column=label, models_dir=models, seed=seed,
                           plots=False, progress=False)
started = time.perf_counter()
train_and_export(settings)
print(json.dumps({"fit_s": time.perf_counter() - started}))
"""


def run_datasentinel_before(split: Split, name: str, env: dict[str, str]) -> Run:
    """``run_datasentinel`` with the trainer of an earlier revision (``env``: baseline_env)."""
    with tempfile.TemporaryDirectory(prefix="detection-before-") as tmp:
        csv_path, models = Path(tmp) / "train.csv", Path(tmp) / "models"
        split.train.to_csv(csv_path, index=False)
        args = [str(csv_path), str(models), str(split.seed), split.label]
        done = subprocess.run(
            [sys.executable, "-c", BEFORE_SCRIPT, *args],
            env={**os.environ, **env},
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        )
        fit_s = json.loads(done.stdout.strip().splitlines()[-1])["fit_s"]
        config = json.loads((models / "config.json").read_text())
        session = ort.InferenceSession(models / "model.onnx", providers=["CPUExecutionProvider"])
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: split.features(split.test)})
    flagged = scores > config["threshold"]
    expected_share = 1 - config["training"]["threshold_quantile"]
    return score_run(split, name, scores, flagged, fit_s, expected_share)


def pyod_detector(name: str, seed: int):
    module_name, class_name = BASELINES[name]
    detector_class = getattr(importlib.import_module(module_name), class_name)
    takes_seed = "random_state" in inspect.signature(detector_class).parameters
    return detector_class(random_state=seed) if takes_seed else detector_class()


@functools.cache
def warm_up(name: str) -> None:
    """One untimed fit, so that no detector's fit time includes imports or numba compiling."""
    pyod_detector(name, 0).fit(np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32))


def run_baseline(name: str, split: Split) -> Run:
    warm_up(name)
    detector = pyod_detector(name, split.seed)
    started = time.perf_counter()
    detector.fit(split.features(split.train))
    fit_s = time.perf_counter() - started
    features = split.features(split.test)
    scores = detector.decision_function(features)
    flagged = detector.predict(features) == 1
    return score_run(split, name, scores, flagged, fit_s)


def benchmark(
    path: Path,
    label: str,
    seeds: range,
    detectors: list[str],
    overrides: dict[str, str],
    cache: BaselineCache,
    before: dict[str, dict[str, str]],
) -> list[Run]:
    frame = pd.read_csv(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    runs = []
    for seed in seeds:
        train, test = train_test_split(frame, test_size=TEST_FRACTION, random_state=seed)
        split = Split(path.stem, seed, len(frame), train, test, label)
        runs += [run_detector(name, split, digest, overrides, cache) for name in detectors]
        runs += [run_datasentinel_before(split, name, env) for name, env in before.items()]
    return runs


def run_detector(
    name: str, split: Split, digest: str, overrides: dict[str, str], cache: BaselineCache
) -> Run:
    if name == DATASENTINEL:
        return run_datasentinel(split, overrides)
    key = (digest, name, split.seed, TEST_FRACTION)
    return cache.run(key, split.dataset, lambda: run_baseline(name, split))


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key.replace("-", "_")] = value
    return overrides


def parse_detectors(text: str) -> list[str]:
    detectors = [name.strip() for name in text.split(",") if name.strip()]
    known = [DATASENTINEL, *BASELINES]
    unknown = [name for name in detectors if name not in known]
    if unknown or not detectors:
        raise SystemExit(f"--detectors takes names from {', '.join(known)}; got {text!r}")
    if any(name in BASELINES for name in detectors):
        require_pyod()
    return list(dict.fromkeys(detectors))


def require_pyod() -> None:
    try:
        importlib.import_module("pyod")
    except ImportError as error:
        raise SystemExit(
            "The baseline detectors need PyOD, a benchmark-only dependency: pip install -e .[bench]"
        ) from error


def suite_csvs(out_dir: Path) -> list[Path]:
    """The synthetic development suite, written as CSVs by benchmarks/suite.py."""
    try:
        suite = importlib.import_module("suite")
    except ModuleNotFoundError as error:
        if error.name != "suite":
            raise
        raise SystemExit("--suite needs benchmarks/suite.py, which is missing") from error
    return suite.write_suite(out_dir)


def dataset_paths(csvs: list[Path], suite: bool, tmp: Path) -> list[Path]:
    paths = csvs + (suite_csvs(tmp) if suite else [])
    if not paths:
        raise SystemExit("give labelled CSV files, --suite, or both")
    names = [path.stem for path in paths]
    if len(set(names)) < len(names):
        raise SystemExit(f"datasets are named by file stem and these repeat: {names}")
    return paths


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="*", type=Path, help="labelled CSV files")
    parser.add_argument("--suite", action="store_true", help="add the synthetic suite's datasets")
    parser.add_argument("--seeds", type=int, default=5, help="random 60/40 splits per dataset")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seed of the first split (3 with --seeds 2: splits 3 and 4, to add to a run of 3)",
    )
    parser.add_argument("--label-column", default="label", help="column holding 0/1 labels")
    parser.add_argument(
        "--detectors",
        default=DEFAULT_DETECTORS,
        help=f"comma-separated, from {DATASENTINEL}, {', '.join(BASELINES)} (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="write every per-seed run to this JSON file")
    parser.add_argument(
        "--baseline-cache", type=Path, help="JSON file that keeps the baselines' runs between runs"
    )
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also run the trainer of this git revision on the same splits (e.g. main)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a trainer setting, e.g. --set trim_fraction=0 (for ablations)",
    )
    return parser.parse_args()


def main() -> None:
    started = time.perf_counter()
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    detectors = parse_detectors(args.detectors)
    overrides = parse_overrides(args.set)
    cache = BaselineCache(args.baseline_cache)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="detection-suite-") as tmp:
        before = {}
        if args.before:
            before[BEFORE_PREFIX + args.before] = baseline_env(args.before, Path(tmp))
        for path in dataset_paths(args.csv, args.suite, Path(tmp)):
            dataset_runs = benchmark(
                path, args.label_column, seeds, detectors, overrides, cache, before
            )
            cache.save()
            runs += dataset_runs
            print("\n".join(detail_table(path.stem, group(dataset_runs)[path.stem])), end="\n\n")
            sys.stdout.flush()
    print(comparison(group(runs)), end="\n\n")
    if args.json:
        settings = dict(
            seeds=args.seeds,
            first_seed=args.first_seed,
            test_fraction=TEST_FRACTION,
            detectors=detectors,
            before=args.before,
        )
        save_runs(runs, args.json, {**settings, "overrides": overrides})
    print(f"{cache.describe()}; wall time {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
