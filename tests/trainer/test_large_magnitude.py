"""A default fit on large-magnitude integer telemetry (benchmarks/suite.py large_magnitude: the
shape of the 49,097 x 9 set whose fits failed the ONNX parity check) exports and scores."""

import numpy as np
import pandas as pd

from benchmarks import suite
from datasentinel.trainer.pipeline import train_and_export


def test_fit_on_large_magnitudes_passes_the_parity_check(quick_settings, tmp_path):
    rows = suite.large_magnitude_rows(np.random.default_rng(1), 6000)
    path = tmp_path / "telemetry.csv"
    pd.DataFrame(rows, columns=[f"f{j}" for j in range(9)]).to_csv(path, index=False)
    result = train_and_export(quick_settings(data=path, epochs=30, patience=10))
    assert result.model_path.exists()
    assert np.isfinite(result.validation_scores).all()
