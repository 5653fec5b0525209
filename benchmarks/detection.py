"""Detection quality: DataSentinel's trainer vs scikit-learn's IsolationForest on labelled CSVs.

    python benchmarks/detection.py ../shared/data/odds/*.csv --seeds 5

The usual protocol (PyOD benchmark, ADBench): for each seed, a random 60/40 split; each detector
is fitted on the 60% with its anomalies still in it (labels unused for fitting) and scores the
40%. DataSentinel trains through ``train_and_export`` (the code path of ``datasentinel-train``) on
the 60% written to a CSV, and the 40% is scored by ONNX Runtime on the exported model.onnx, the
artifact the engine serves; its flags come from config.json's threshold. IsolationForest runs
with default settings (``random_state=seed``) on the same rows; its flags are its ``predict``.
``--set key=value`` overrides a trainer setting (for ablations; the reported table uses none).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import train_test_split

from datasentinel.model_config import INPUT_NAME, SCORE_OUTPUT, load_config
from datasentinel.trainer.pipeline import train_and_export
from datasentinel.trainer.settings import TrainerSettings

TEST_FRACTION = 0.4
METRICS = ["roc_auc", "pr_auc", "precision", "recall", "f1", "fit_s"]


@dataclass(frozen=True)
class Run:
    """One detector on one split: ranking quality, quality of its own flags, and fit time."""

    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    fit_s: float


def score_run(labels: np.ndarray, scores: np.ndarray, flagged: np.ndarray, fit_s: float) -> Run:
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, flagged, average="binary", zero_division=0
    )
    return Run(
        roc_auc=float(roc_auc_score(labels, scores)),
        pr_auc=float(average_precision_score(labels, scores)),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        fit_s=fit_s,
    )


def run_datasentinel(
    train: pd.DataFrame, test: pd.DataFrame, label: str, seed: int, overrides: dict[str, str]
) -> Run:
    """Trains exactly as ``datasentinel-train --data train.csv --label-column label`` would."""
    with tempfile.TemporaryDirectory(prefix="detection-") as tmp:
        csv_path = Path(tmp) / "train.csv"
        train.to_csv(csv_path, index=False)
        settings = TrainerSettings(
            data=csv_path,
            label_column=label,
            models_dir=Path(tmp) / "models",
            seed=seed,
            plots=False,
            progress=False,
            **overrides,
        )
        started = time.perf_counter()
        result = train_and_export(settings)
        fit_s = time.perf_counter() - started
        config = load_config(settings.models_dir)
        session = ort.InferenceSession(result.model_path, providers=["CPUExecutionProvider"])
    features = test.drop(columns=[label]).to_numpy(dtype=np.float32)
    (scores,) = session.run([SCORE_OUTPUT], {INPUT_NAME: features})
    return score_run(test[label].to_numpy(), scores, scores > config.threshold, fit_s)


def run_iforest(train: pd.DataFrame, test: pd.DataFrame, label: str, seed: int) -> Run:
    """Default IsolationForest; it is scale-invariant, so raw features are fine."""
    forest = IsolationForest(random_state=seed)
    started = time.perf_counter()
    forest.fit(train.drop(columns=[label]).to_numpy(dtype=np.float32))
    fit_s = time.perf_counter() - started
    features = test.drop(columns=[label]).to_numpy(dtype=np.float32)
    scores = -forest.score_samples(features)
    flagged = forest.predict(features) == -1
    return score_run(test[label].to_numpy(), scores, flagged, fit_s)


def benchmark(
    path: Path, label: str, seeds: int, overrides: dict[str, str]
) -> dict[str, list[Run]]:
    frame = pd.read_csv(path)
    runs: dict[str, list[Run]] = {"DataSentinel": [], "IForest": []}
    for seed in range(seeds):
        train, test = train_test_split(frame, test_size=TEST_FRACTION, random_state=seed)
        runs["DataSentinel"].append(run_datasentinel(train, test, label, seed, overrides))
        runs["IForest"].append(run_iforest(train, test, label, seed))
    return runs


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {spread:.3f}"


def table(name: str, runs: dict[str, list[Run]]) -> list[str]:
    lines = [
        "| dataset | detector | ROC-AUC | PR-AUC | precision | recall | F1 | fit s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for detector, detector_runs in runs.items():
        cells = [mean_std([getattr(r, m) for r in detector_runs]) for m in METRICS]
        lines.append(f"| {name} | {detector} | " + " | ".join(cells) + " |")
    return lines


def verdict(name: str, runs: dict[str, list[Run]]) -> str:
    ours = statistics.fmean(r.roc_auc for r in runs["DataSentinel"])
    theirs = statistics.fmean(r.roc_auc for r in runs["IForest"])
    outcome = "beats" if ours >= theirs else "loses"
    return f"{name}: DataSentinel vs IForest ROC-AUC: {ours:.3f} vs {theirs:.3f} ({outcome})"


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key.replace("-", "_")] = value
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="+", type=Path, help="labelled CSV files")
    parser.add_argument("--seeds", type=int, default=5, help="random 60/40 splits per dataset")
    parser.add_argument("--label-column", default="label", help="column holding 0/1 labels")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a trainer setting, e.g. --set trim_fraction=0 (for ablations)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = parse_overrides(args.set)
    verdicts = []
    for path in args.csv:
        runs = benchmark(path, args.label_column, args.seeds, overrides)
        print("\n".join(table(path.stem, runs)), end="\n\n", flush=True)
        verdicts.append(verdict(path.stem, runs))
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
