"""Two PNGs beside the model: the loss curves and the validation score distribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Figure without pyplot renders through the Agg canvas: no display, no global figure state.
from matplotlib.figure import Figure

from datasentinel.trainer.fitting.training import History

LOSS_PLOT = "training_loss.png"
SCORES_PLOT = "validation_scores.png"
_NORMAL_COLOUR = "tab:blue"
_ANOMALY_COLOUR = "tab:red"
_THRESHOLD_COLOUR = "black"


def write_plots(
    models_dir: Path,
    history: History,
    scores: np.ndarray,
    labels: np.ndarray | None,
    threshold: float,
    quantile: float,
) -> list[Path]:
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    return [
        plot_training_loss(history, models_dir / LOSS_PLOT),
        plot_validation_scores(scores, labels, threshold, quantile, models_dir / SCORES_PLOT),
    ]


def plot_training_loss(history: History, path: Path) -> Path:
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    epochs = np.arange(1, history.epochs_run + 1)
    axes.plot(epochs, history.train_loss, label="training loss (trimmed)", color=_NORMAL_COLOUR)
    axes.plot(
        epochs,
        history.validation_loss,
        label="validation loss (trimmed; early stopping)",
        color="tab:orange",
    )
    axes.axvline(
        history.best_epoch,
        color=_THRESHOLD_COLOUR,
        linestyle="--",
        linewidth=1,
        label=f"best epoch ({history.best_epoch}, weights kept)",
    )
    # Losses fall by orders of magnitude; a log axis keeps the late epochs readable.
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("squared reconstruction error (scaled, before member calibration)")
    axes.set_title("Autoencoder training: loss per epoch")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend()
    figure.savefig(path, dpi=110)
    return path


def plot_validation_scores(
    scores: np.ndarray, labels: np.ndarray | None, threshold: float, quantile: float, path: Path
) -> Path:
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    bins = _log_bins(scores)
    for name, colour, group in _score_groups(scores, labels):
        # Clipped to the first edge: a score of exactly 0 has no place on a log axis.
        clipped = np.maximum(group, bins[0])
        axes.hist(clipped, bins=bins, color=colour, alpha=0.6, label=f"{name} ({len(group)} rows)")
    axes.axvline(
        threshold,
        color=_THRESHOLD_COLOUR,
        linestyle="--",
        label=f"threshold {threshold:.3g} ({quantile:g} quantile)",
    )
    # Scores span decades and anomalies are few: log axes show both the bulk and the tail.
    axes.set_xscale("log")
    axes.set_yscale("log")
    # The score's one description (detector.graph.ScoringGraph), short enough for an axis.
    axes.set_xlabel(
        "score: how surprising the row is next to the training data "
        "(typical training row = 1; log scale)"
    )
    axes.set_ylabel("rows (log scale)")
    axes.set_title("Validation split: anomaly score distribution")
    axes.legend()
    figure.savefig(path, dpi=110)
    return path


def _score_groups(
    scores: np.ndarray, labels: np.ndarray | None
) -> list[tuple[str, str, np.ndarray]]:
    if labels is None:
        return [("validation rows", _NORMAL_COLOUR, scores)]
    return [
        ("normal", _NORMAL_COLOUR, scores[labels == 0]),
        ("anomaly", _ANOMALY_COLOUR, scores[labels == 1]),
    ]


def _log_bins(scores: np.ndarray, n_bins: int = 60) -> np.ndarray:
    """Log-spaced bin edges from the smallest positive score to the largest."""
    positive = scores[scores > 0]
    low = float(positive.min()) if positive.size else 1e-6
    return np.geomspace(low, max(float(scores.max()), low * 10), n_bins + 1)
