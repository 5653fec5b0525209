"""Model time per call, side by side: ONNX Runtime on each given model.onnx, 1 and 1024 rows.

    python benchmarks/model_cost.py before=/tmp/old/models after=models
    python benchmarks/model_cost.py --train previous=61110fb --train main=main --train this=.

Each ``NAME=MODELS_DIR`` is a folder with model.onnx and config.json (e.g. the same data trained
by two versions of the trainer). Each ``--train NAME=REV`` trains a model first with the trainer
of git revision REV (``.``: this checkout) on the same data (``--data``, default the built-in
synthetic data) for ``--epochs`` epochs: the graph's shape, which is all the cost depends on,
does not depend on how long it trained.

One thread, as the engine's workers run; rows are drawn around the model's own centre
(config.json normalisation) so every path of the graph is exercised. The cases are measured in
turns, ``--rounds`` times, and the median per case is reported, so a noisy neighbour on a shared
machine hits every model alike. The ratio column is against the
first model given with the same number of features (list the old model of each data first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from datasentinel.model_config import INPUT_NAME, load_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline import baseline_env  # noqa: E402

BATCHES = (1, 1024)


def session(models_dir: Path) -> tuple[ort.InferenceSession, np.ndarray, np.ndarray]:
    config = load_config(models_dir)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    model = ort.InferenceSession(
        str(models_dir / config.model_file), options, providers=["CPUExecutionProvider"]
    )
    centre = np.asarray(config.normalisation.centre, dtype=np.float32)
    spread = np.asarray(config.normalisation.scale, dtype=np.float32)
    return model, centre, spread


def time_per_call(model: ort.InferenceSession, rows: np.ndarray, seconds: float) -> float:
    """Mean seconds per call over about ``seconds`` of back-to-back calls (after a warm-up)."""
    model.run(None, {INPUT_NAME: rows})
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.run(None, {INPUT_NAME: rows})
        calls += 1
    return (time.perf_counter() - started) / calls


def measure(models: dict[str, Path], rounds: int, seconds: float) -> dict[tuple[str, int], float]:
    rng = np.random.default_rng(0)
    sessions = {name: session(path) for name, path in models.items()}
    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for name, (model, centre, spread) in sessions.items():
            for batch in BATCHES:
                rows = (centre + spread * rng.standard_normal((batch, len(centre)))).astype(
                    np.float32
                )
                samples.setdefault((name, batch), []).append(time_per_call(model, rows, seconds))
    return {case: statistics.median(values) for case, values in samples.items()}


def report(models: dict[str, Path], times: dict[tuple[str, int], float]) -> None:
    dims = {name: load_config(path).input_dim for name, path in models.items()}
    first_with = {}
    for name, dim in dims.items():
        first_with.setdefault(dim, name)
    print("| model | features | rows per call | us per call | us per row | vs |")
    print("|---|---|---|---|---|---|")
    for name, dim in dims.items():
        baseline = first_with[dim]
        for batch in BATCHES:
            seconds = times[(name, batch)]
            ratio = seconds / times[(baseline, batch)]
            print(
                f"| {name} | {dim} | {batch} | {seconds * 1e6:.1f} | "
                f"{seconds * 1e6 / batch:.2f} | {ratio:.2f}x {baseline} |"
            )


def train(rev: str, models_dir: Path, workdir: Path, args: argparse.Namespace) -> None:
    """A model trained by the trainer of git revision ``rev`` (``.``: this checkout) into
    ``models_dir``, in a subprocess (baseline_env puts that revision's package first)."""
    env = dict(os.environ)
    if rev != ".":
        env.update(baseline_env(rev, workdir))
    command = [sys.executable, "-m", "datasentinel.trainer", "--models-dir", str(models_dir)]
    command += ["--epochs", str(args.epochs), "--no-plots", "--no-progress"]
    if args.data is not None:
        command += ["--data", str(args.data.resolve())]
    if args.label_column is not None:
        command += ["--label-column", args.label_column]
    subprocess.run(command, env=env, cwd=workdir, check=True, capture_output=True)


def named(item: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    name, _, value = item.partition("=")
    if not value:
        parser.error(f"expected NAME=VALUE, got {item!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="NAME=MODELS_DIR")
    parser.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="NAME=REV",
        help="train a model with git revision REV's trainer (. = this checkout) first",
    )
    parser.add_argument("--data", type=Path, help="CSV to train on (default: synthetic data)")
    parser.add_argument("--label-column")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per case and round")
    args = parser.parse_args()
    models = {name: Path(folder) for name, folder in (named(i, parser) for i in args.models)}
    with tempfile.TemporaryDirectory(prefix="model-cost-") as tmp:
        for name, rev in (named(item, parser) for item in args.train):
            models[name] = Path(tmp) / f"models-{name}"
            train(rev, models[name], Path(tmp), args)
        if not models:
            parser.error("give at least one NAME=MODELS_DIR or --train NAME=REV")
        report(models, measure(models, args.rounds, args.seconds))


if __name__ == "__main__":
    main()
