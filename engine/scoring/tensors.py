"""Raw tensor bytes <-> numpy, shared by both gRPC fronts (ours and the Open Inference Protocol)."""

from __future__ import annotations

import numpy as np

from datasentinel.engine.errors import InvalidInput

FLOAT32_LE = np.dtype("<f4")


def float32_rows(data: bytes, rows: int, cols: int, what: str) -> np.ndarray:
    """``rows x cols`` little-endian float32 values, row-major, without a copy; InvalidInput
    naming ``what`` when the byte count does not match the shape."""
    if rows < 0 or cols < 0:
        raise InvalidInput(f"{what}: rows={rows} and cols={cols} cannot be negative")
    # Python ints: a claimed shape of 2**40 rows cannot overflow here, and is refused on the
    # byte count before anything is allocated.
    expected = rows * cols * FLOAT32_LE.itemsize
    if expected == 0:  # also keeps numpy from a zero-size shape like (2**62, 0): "too big"
        raise InvalidInput(
            f"empty batch: {what} holds rows={rows} x cols={cols} values; send at least one "
            "vector of the model's features"
        )
    if len(data) != expected:
        raise InvalidInput(
            f"{what} holds {len(data)} bytes but rows={rows} x cols={cols} float32 values need "
            f"{expected}: send little-endian float32, row-major"
        )
    return np.frombuffer(data, dtype=FLOAT32_LE).reshape(rows, cols)
