"""The training loop: Adam on trimmed reconstruction error, early stopping on the validation loss.

Training data holds anomalies. Each batch's rows with the highest error are left out of the loss
(per member), so the autoencoders learn the normal rows and anomalies stay hard to reconstruct;
the validation loss is trimmed the same way, so the anomalies in it do not steer early stopping."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from datasentinel.trainer.detector.graph import MemberGroup, ScoringGraph, in_chunks, member_errors
from datasentinel.trainer.errors import TrainingError
from datasentinel.trainer.fitting.progress import Progress
from datasentinel.trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

# An epoch counts as better only when its validation loss is this much below the best so far.
# The trimmed loss of a converged run keeps creeping down (0.434 -> 0.418 over 150 more epochs
# on a 64-feature set, 1e-4 steps each) for no better ranking: with 1e-4 such runs went on for
# 300-400 epochs and 30 s; with 1% they stop at 80-150 with the same ROC-AUC (3 seeds: digits
# 0.810 vs 0.807, pendigits 0.917 vs 0.930, medical 0.909 vs 0.911, images 0.916 vs 0.914).
MIN_RELATIVE_IMPROVEMENT = 1e-2
# Early stopping's patience never holds fewer optimiser steps than this (see fit).
MIN_PATIENCE_STEPS = 50
# However large the table, the fit budget leaves this many epochs (see budget_epochs).
MIN_BUDGET_EPOCHS = 5
# The default mini-batch, and how batch_rows lowers it on small tables: at 256 rows a batch, a
# table of a few hundred training rows took one or two optimiser steps an epoch and early
# stopping ended training while the autoencoders were still coarse. At least 4 steps an epoch,
# batches of at least 32 rows (5 seeds, mean ROC-AUC: small_local, 144 training rows, 0.859 ->
# 0.891, KNN 0.920; tiny_categorical, 72 rows, 0.780 -> 0.817; benchmarks/DETECTION.md). On 960
# rows, 4 steps of 256 rows already, 8 steps an epoch gave nothing (digits_local 0.809 / 0.810,
# 2 seeds) and took 2-6x the time.
DEFAULT_BATCH_ROWS = 256
MIN_STEPS_PER_EPOCH = 4
MIN_BATCH_ROWS = 32


@dataclass
class History:
    """Mean loss per epoch (index 0 = epoch 1) and the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    # Epochs without improvement that end training (patience_epochs), set by fit.
    patience: int = 0
    # The most epochs training could run (--epochs, or fewer by the fit budget), set by fit.
    epoch_cap: int = 0
    # True when the fit budget, not --epochs, set epoch_cap.
    capped_by_budget: bool = False

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

    def still_improving(self) -> bool:
        """True when training ended by the epoch cap, not by running out of patience."""
        return self.epochs_run - self.best_epoch < self.patience

    def cut_by_budget(self) -> bool:
        """True when the fit budget ended training while the validation loss was improving."""
        return self.capped_by_budget and self.still_improving()


def fit(
    graph: ScoringGraph,
    train_features: np.ndarray,
    validation_features: np.ndarray | None,
    settings: TrainerSettings,
) -> History:
    """Trains every group of ``graph`` in place, side by side on the same batches, and leaves it
    with its best validation weights. Early stopping waits ``patience`` epochs, and never fewer
    than MIN_PATIENCE_STEPS optimiser steps: on a few hundred rows an epoch is a single step,
    and ten steps without a better validation loss say little about the next fifty. Without
    validation rows it trains exactly ``settings.epochs`` epochs (the cross-fitted threshold's
    throw-away models, which reuse the served model's best epoch count)."""
    train_rows = torch.as_tensor(train_features, dtype=torch.float32)
    optimiser = torch.optim.Adam(graph.parameters(), lr=settings.learning_rate)
    batch_order = torch.Generator().manual_seed(settings.seed)
    batch = batch_rows(settings.batch_size, len(train_rows))
    patience = patience_epochs(settings.patience, len(train_rows), batch)
    cap = budget_epochs(settings.fit_budget, *train_rows.shape)
    history = History(patience=patience, epoch_cap=min(cap, settings.epochs))
    history.capped_by_budget = cap < settings.epochs
    if validation_features is None:
        for _ in range(settings.epochs):
            loss = _train_epoch(
                graph, optimiser, train_rows, batch, settings, batch_order, Progress(0, False)
            )
            history.record(loss, loss)
        return history
    validation_rows = torch.as_tensor(validation_features, dtype=torch.float32)
    best_state = _snapshot(graph)
    _log_plan(history, train_rows.shape, batch)
    with Progress(history.epoch_cap, settings.progress) as progress:
        for _ in range(history.epoch_cap):
            progress.start_epoch()
            train_loss = _train_epoch(
                graph, optimiser, train_rows, batch, settings, batch_order, progress
            )
            validation_loss = _validation_loss(graph, validation_rows, settings.trim_fraction)
            if history.record(train_loss, validation_loss):
                best_state = _snapshot(graph)
            progress.end_epoch(train_loss, validation_loss)
            if history.epochs_run - history.best_epoch >= patience:
                break
    # Logged after the bar is closed so the line does not land in the middle of it.
    log.info("trained %d epochs, keeping epoch %d", history.epochs_run, history.best_epoch)
    graph.load_state_dict(best_state)
    return history


def batch_rows(setting: int | None, rows: int) -> int:
    """Rows per mini-batch: ``setting`` when the user set one, else DEFAULT_BATCH_ROWS lowered to
    give at least MIN_STEPS_PER_EPOCH steps an epoch on ``rows`` training rows, never below
    MIN_BATCH_ROWS."""
    if setting is not None:
        return setting
    return min(DEFAULT_BATCH_ROWS, max(MIN_BATCH_ROWS, math.ceil(rows / MIN_STEPS_PER_EPOCH)))


def budget_epochs(fit_budget: float, rows: int, features: int) -> int:
    """The epochs ``fit_budget`` (rows x features x epochs) allows, never fewer than
    MIN_BUDGET_EPOCHS: the training's work grows with rows x features per epoch."""
    return max(MIN_BUDGET_EPOCHS, math.floor(fit_budget / (rows * features)))


def _log_plan(history: History, shape: torch.Size, batch: int) -> None:
    rows, features = shape
    why = "the fit budget" if history.capped_by_budget else "--epochs"
    log.info(
        "training on %d rows x %d features in batches of %d: at most %d epochs (%s), early "
        "stopping after %d without improvement",
        rows,
        features,
        batch,
        history.epoch_cap,
        why,
        history.patience,
    )


def patience_epochs(patience: int, rows: int, batch_size: int) -> int:
    """``patience`` epochs, raised so that they hold at least MIN_PATIENCE_STEPS steps."""
    steps_per_epoch = math.ceil(rows / batch_size)
    return max(patience, math.ceil(MIN_PATIENCE_STEPS / steps_per_epoch))


def _train_epoch(
    graph: ScoringGraph,
    optimiser: torch.optim.Optimizer,
    train_rows: torch.Tensor,
    batch_size: int,
    settings: TrainerSettings,
    batch_order: torch.Generator,
    progress: Progress,
) -> float:
    """One pass over a fresh permutation; returns the mean trimmed training loss of the members.
    Indexing the tensor directly was 2.5x faster here than a DataLoader. Rows are standardised
    per batch (each group has its own scaling): a standardised copy of the whole set per group
    would hold groups x rows x features values."""
    graph.train()
    trim = settings.trim_fraction
    permutation = torch.randperm(len(train_rows), generator=batch_order)
    total = 0.0
    for start in range(0, len(train_rows), batch_size):
        batch = train_rows[permutation[start : start + batch_size]]
        # Summed over members and groups: each member gets the gradient of its own trimmed loss.
        losses = torch.cat([_member_losses(group, batch, trim) for group in graph.groups])
        optimiser.zero_grad()
        losses.sum().backward()
        optimiser.step()
        total += losses.mean().item() * len(batch)
        progress.batch(start + len(batch), len(train_rows))
    mean_loss = total / len(train_rows)
    if not math.isfinite(mean_loss):
        raise TrainingError("training diverged (the loss is not finite); lower --learning-rate")
    return mean_loss


def _member_losses(group: MemberGroup, batch: torch.Tensor, trim: float) -> torch.Tensor:
    z = group.standardise(batch)
    return trimmed_mean(member_errors(group.autoencoder, z).mean(dim=2), trim)


@torch.no_grad()
def _validation_loss(graph: ScoringGraph, validation_rows: torch.Tensor, trim: float) -> float:
    """Sum over groups of the trimmed mean of the group's validation scores: the same trimming as
    in training."""
    graph.eval()
    total = 0.0
    for group in graph.groups:
        scores = in_chunks(group.autoencoder, validation_rows, group_scores(group))
        total += trimmed_mean(scores, trim).item()
    return total


def group_scores(group: MemberGroup) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda rows: group.feature_errors(rows).mean(dim=1)


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
