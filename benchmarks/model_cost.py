"""Model time per call, side by side: ONNX Runtime on each given model.onnx, 1 and 1024 rows.

    python benchmarks/model_cost.py before=/tmp/old/models after=models

Each ``NAME=MODELS_DIR`` is a folder with model.onnx and config.json (e.g. the same data trained
by two versions of the trainer). One thread, as the engine's workers run; rows are drawn around
the model's own centre (config.json normalisation) so every path of the graph is exercised.
The cases are measured in turns, ``--rounds`` times, and the median per case is reported, so a
noisy neighbour on a shared machine hits every model alike. The ratio column is against the
first model given with the same number of features (list the old model of each data first).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from datasentinel.model_config import INPUT_NAME, load_config

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME=MODELS_DIR")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="per case and round")
    args = parser.parse_args()
    models = {}
    for item in args.models:
        name, _, folder = item.partition("=")
        if not folder:
            parser.error(f"expected NAME=MODELS_DIR, got {item!r}")
        models[name] = Path(folder)
    report(models, measure(models, args.rounds, args.seconds))


if __name__ == "__main__":
    main()
