"""A person who starts a fit on a large table hears from it within seconds (issue 19: a
100,000 x 500 fit printed nothing for 100 s). A real ``datasentinel-train`` process on a real
100,000 x 500 CSV; stopped once it has shown how training is going."""

import subprocess
import sys
import time

import numpy as np
import pytest

ROWS, FEATURES = 100_000, 500
FIRST_LINE_WITHIN_S = 10.0
# Until the first line about training itself; a bound, so a hang fails instead of waiting. About
# 14 s on a quiet machine (25 s before the scalings went a block of columns at a time); 120 s
# was passed once with 4 other jobs on the 2 cores (load 9).
TRAINING_LINE_WITHIN_S = 300.0


def _write_digits_csv(path, rows: int, features: int) -> None:
    """One digit per cell (2 bytes with its comma): 100 MB, written in about a second."""
    digits = np.random.default_rng(0).integers(0, 10, (rows, features), dtype=np.uint8)
    text = np.full((rows, 2 * features), ord(","), dtype=np.uint8)
    text[:, 0::2] = digits + ord("0")
    text[:, -1] = ord("\n")
    header = ",".join(f"f{j}" for j in range(features)) + "\n"
    with open(path, "wb") as out:
        out.write(header.encode())
        out.write(text.tobytes())


@pytest.mark.e2e
def test_a_wide_fit_shows_progress_within_seconds(tmp_path):
    csv = tmp_path / "wide.csv"
    _write_digits_csv(csv, ROWS, FEATURES)
    command = [sys.executable, "-m", "datasentinel.trainer", "--data", str(csv), "--no-plots",
               "--models-dir", str(tmp_path / "models")]  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    seen: list[tuple[float, str]] = []
    try:
        for line in process.stderr:
            seen.append((time.monotonic() - started, line.strip()))
            if "epoch 1/" in line or seen[-1][0] > TRAINING_LINE_WITHIN_S:
                break
    finally:
        process.kill()
        process.wait()
    first_s, first = seen[0]
    training_s, training = seen[-1]
    print(f"first line after {first_s:.1f} s, first training line after {training_s:.1f} s")
    assert first_s < FIRST_LINE_WITHIN_S and "starting: reading" in first
    assert "epoch 1/" in training and training_s < TRAINING_LINE_WITHIN_S
