"""A sensor log shaped like the files users bring: ``python -m datasentinel.sensor_log FILE``.

The built-in synthetic plant (synthetic.py), written as a CSV with what real exports have around
the numbers: an ISO ``timestamp``, a text ``machine_id``, the sensor columns, a 0/1 ``label`` and a
few empty cells; optionally the columns in another order. The README's "Your own data" walks
through training and scoring such a file; the end-to-end tests use it too.
"""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from datasentinel import synthetic

MACHINES = ("press-01", "press-02", "press-03")


def write(
    path: Path,
    rows: int,
    seed: int,
    *,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    empty_cells: int = 6,
    shuffle_columns: bool = False,
    n_features: int = 12,
) -> list[str]:
    """Writes the log; returns its header. ``empty_cells`` sensor cells are left empty (never
    in the same row twice)."""
    spec = synthetic.SyntheticSpec(n_features=n_features, n_drivers=3)
    data = synthetic.generate(rows, seed, spec)
    rng = np.random.default_rng(seed + 1000)
    header = ["timestamp", "machine_id", *data.feature_names, "label"]
    empty = set()
    for row in rng.choice(rows, size=min(empty_cells, rows), replace=False):
        empty.add((int(row), data.feature_names[int(rng.integers(n_features))]))
    if shuffle_columns:  # after the empty cells: the same rows either way, only the order differs
        header = [header[i] for i in rng.permutation(len(header))]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(rows):
            cells = {
                "timestamp": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "machine_id": MACHINES[i % len(MACHINES)],
                "label": str(int(data.labels[i])),
            }
            for j, name in enumerate(data.feature_names):
                cells[name] = "" if (i, name) in empty else f"{data.features[i, j]:.4f}"
            writer.writerow([cells[name] for name in header])
    return header


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasentinel.sensor_log", description=__doc__)
    parser.add_argument("file", type=Path, help="CSV file to write")
    parser.add_argument("--rows", type=int, default=5000, help="data rows (default 5000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--start", default="2026-01-01T00:00:00+00:00", help="first timestamp")
    parser.add_argument("--empty-cells", type=int, default=6, help="sensor cells left empty")
    parser.add_argument(
        "--shuffle-columns", action="store_true", help="write the columns in another order"
    )
    args = parser.parse_args(argv)
    write(
        args.file,
        args.rows,
        args.seed,
        start=datetime.fromisoformat(args.start),
        empty_cells=args.empty_cells,
        shuffle_columns=args.shuffle_columns,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
