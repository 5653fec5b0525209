"""The training loop: Adam on trimmed reconstruction error, early stopping on the validation loss.

Training data holds anomalies. Each batch's rows with the highest error are left out of the loss
(per member), so the autoencoders learn the normal rows and anomalies stay hard to reconstruct;
the validation loss is trimmed the same way, so the anomalies in it do not steer early stopping."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from datasentinel.trainer.errors import TrainingError
from datasentinel.trainer.model import ScoringGraph, in_chunks, member_errors, reconstruction_errors
from datasentinel.trainer.progress import Progress
from datasentinel.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

# Smaller gains are noise: without this, ever tinier improvements keep a converged run going.
MIN_RELATIVE_IMPROVEMENT = 1e-4


@dataclass
class History:
    """Mean loss per epoch (index 0 = epoch 1) and the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0

    @property
    def epochs_run(self) -> int:
        return len(self.train_loss)

    @property
    def best_validation_loss(self) -> float:
        return self.validation_loss[self.best_epoch - 1]

    def record(self, train_loss: float, validation_loss: float) -> bool:
        """Appends an epoch; True when it is the new best."""
        self.train_loss.append(train_loss)
        self.validation_loss.append(validation_loss)
        improved = self.best_epoch == 0 or validation_loss < self.best_validation_loss * (
            1 - MIN_RELATIVE_IMPROVEMENT
        )
        if improved:
            self.best_epoch = self.epochs_run
        return improved


def fit(
    graph: ScoringGraph,
    train_features: np.ndarray,
    validation_features: np.ndarray,
    settings: TrainerSettings,
) -> History:
    """Trains ``graph.autoencoder`` in place and leaves it with its best validation weights."""
    with torch.no_grad():
        train_z = graph.standardise(torch.as_tensor(train_features))
        validation_z = graph.standardise(torch.as_tensor(validation_features))
    autoencoder = graph.autoencoder
    optimiser = torch.optim.Adam(autoencoder.parameters(), lr=settings.learning_rate)
    batch_order = torch.Generator().manual_seed(settings.seed)
    history = History()
    best_state = _snapshot(autoencoder)
    trim = settings.trim_fraction
    with Progress(settings.epochs, settings.progress) as progress:
        for _ in range(settings.epochs):
            progress.start_epoch()
            train_loss = _train_epoch(
                autoencoder, optimiser, train_z, settings.batch_size, trim, batch_order, progress
            )
            if history.record(train_loss, _validation_loss(autoencoder, validation_z, trim)):
                best_state = _snapshot(autoencoder)
            progress.end_epoch(train_loss, history.validation_loss[-1])
            if history.epochs_run - history.best_epoch >= settings.patience:
                break
    # Logged after the bar is closed so the line does not land in the middle of it.
    log.info("trained %d epochs, keeping epoch %d", history.epochs_run, history.best_epoch)
    autoencoder.load_state_dict(best_state)
    return history


def _train_epoch(
    autoencoder: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    train_z: torch.Tensor,
    batch_size: int,
    trim: float,
    batch_order: torch.Generator,
    progress: Progress,
) -> float:
    """One pass over a fresh permutation; returns the mean trimmed training loss of the members.
    Indexing the tensor directly was 2.5x faster here than a DataLoader."""
    autoencoder.train()
    permutation = torch.randperm(len(train_z), generator=batch_order)
    total = 0.0
    for start in range(0, len(train_z), batch_size):
        batch = train_z[permutation[start : start + batch_size]]
        # Summed over members: each gets the gradient of its own trimmed loss.
        losses = trimmed_mean(member_errors(autoencoder, batch).mean(dim=2), trim)
        loss = losses.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += losses.mean().item() * len(batch)
        progress.batch(start + len(batch), len(train_z))
    mean_loss = total / len(train_z)
    if not math.isfinite(mean_loss):
        raise TrainingError("training diverged (the loss is not finite); lower --learning-rate")
    return mean_loss


@torch.no_grad()
def _validation_loss(
    autoencoder: torch.nn.Module, validation_z: torch.Tensor, trim: float
) -> float:
    """Trimmed mean of the ensemble's validation scores: the same trimming as in training."""
    autoencoder.eval()
    scores = in_chunks(
        autoencoder, validation_z, lambda z: reconstruction_errors(autoencoder, z).mean(dim=1)
    )
    return trimmed_mean(scores, trim).item()


def trimmed_mean(row_errors: torch.Tensor, trim: float) -> torch.Tensor:
    """Mean over the last axis of all but the largest ``trim`` share of values (at least one
    value is kept): the rows the model reconstructs worst are presumed anomalies."""
    n_rows = row_errors.shape[-1]
    kept = max(1, math.ceil(n_rows * (1 - trim)))
    if kept == n_rows:
        return row_errors.mean(dim=-1)
    return torch.topk(row_errors, kept, dim=-1, largest=False, sorted=False).values.mean(dim=-1)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}
