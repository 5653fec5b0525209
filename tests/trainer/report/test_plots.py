import numpy as np
import pytest
from matplotlib.image import imread

from datasentinel.trainer.report.plots import plot_validation_scores

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_real_png(path):
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert path.stat().st_size > 10_000
    # Not a blank canvas: an empty figure would be one flat colour.
    assert imread(path).std() > 0.05


@pytest.mark.parametrize("index", [0, 1], ids=["training_loss", "validation_scores"])
def test_run_writes_both_plots(tiny_run, index):
    _assert_real_png(tiny_run.plot_paths[index])


def test_score_plot_works_without_labels(tmp_path):
    scores = np.random.default_rng(0).lognormal(-5, 1, size=500).astype(np.float32)
    scores[0] = 0.0  # an exact zero must not break the log axis
    path = plot_validation_scores(
        scores, None, float(np.quantile(scores, 0.99)), 0.99, tmp_path / "scores.png"
    )
    _assert_real_png(path)
