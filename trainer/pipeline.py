"""``train_and_export``: data -> trained autoencoder -> checked ONNX + config.json (+ plots)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasentinel.model_config import ModelConfig, TrainingSummary
from datasentinel.trainer.artifacts import build_config, write_artifacts
from datasentinel.trainer.data import Dataset, Split, load_dataset, split_dataset
from datasentinel.trainer.evaluation import Evaluation, evaluate, threshold_at
from datasentinel.trainer.export import export_onnx
from datasentinel.trainer.model import (
    ScoringGraph,
    build_scoring_graph,
    calibrate_members,
    score_rows,
)
from datasentinel.trainer.plots import write_plots
from datasentinel.trainer.settings import TrainerSettings
from datasentinel.trainer.training import History, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    """What one run produced: the written files, the trained graph and how it did."""

    config: ModelConfig
    model_path: Path
    config_path: Path
    plot_paths: list[Path]
    graph: ScoringGraph
    history: History
    validation: Dataset
    validation_scores: np.ndarray
    evaluation: Evaluation | None


def train_and_export(settings: TrainerSettings) -> TrainingResult:
    """Trains on ``settings.data`` (or synthetic data) and writes the model into
    ``settings.models_dir``. Raises a TrainerError subclass on bad data or a failed export."""
    torch.set_num_threads(settings.torch_threads)
    torch.manual_seed(settings.seed)
    split = _load_split(settings)
    graph = build_scoring_graph(
        split.train.features, settings.hidden_dims, settings.latent_dim, settings.ensemble_size
    )
    history = fit(graph, split.train.features, split.validation.features, settings)
    calibrate_members(graph, split.train.features)
    scores = score_rows(graph, split.validation.features)
    threshold = threshold_at(scores, settings.threshold_quantile)
    evaluation = evaluate(scores, split.validation.labels, threshold)
    onnx_bytes = export_onnx(graph, split.validation.features)
    summary = _training_summary(settings, split, history, evaluation)
    config = build_config(onnx_bytes, graph, split.train.feature_names, threshold, summary)
    plot_paths = _plots(settings, history, split.validation, scores, threshold)
    model_path, config_path = write_artifacts(onnx_bytes, config, settings.models_dir)
    log.info("wrote %s and %s (version %s)", model_path, config_path, config.model_version)
    return TrainingResult(
        config=config,
        model_path=model_path,
        config_path=config_path,
        plot_paths=plot_paths,
        graph=graph,
        history=history,
        validation=split.validation,
        validation_scores=scores,
        evaluation=evaluation,
    )


def _load_split(settings: TrainerSettings) -> Split:
    dataset = load_dataset(settings)
    split = split_dataset(dataset, settings.validation_fraction, settings.seed)
    log.info(
        "data: %s; %d features; %d training rows, %d validation rows",
        dataset.source,
        len(dataset.feature_names),
        len(split.train.features),
        len(split.validation.features),
    )
    return split


def _training_summary(
    settings: TrainerSettings, split: Split, history: History, evaluation: Evaluation | None
) -> TrainingSummary:
    # config.json's schema has room for these three; the summary prints the rest.
    metrics = {} if evaluation is None else _schema_metrics(evaluation)
    return TrainingSummary(
        data_source=split.train.source,
        rows_train=len(split.train.features),
        rows_validation=len(split.validation.features),
        epochs_run=history.epochs_run,
        best_epoch=history.best_epoch,
        best_validation_loss=history.best_validation_loss,
        threshold_quantile=settings.threshold_quantile,
        seed=settings.seed,
        **metrics,
    )


def _schema_metrics(evaluation: Evaluation) -> dict[str, float]:
    return {
        "roc_auc": evaluation.roc_auc,
        "precision": evaluation.precision,
        "recall": evaluation.recall,
    }


def _plots(
    settings: TrainerSettings,
    history: History,
    validation: Dataset,
    scores: np.ndarray,
    threshold: float,
) -> list[Path]:
    if not settings.plots:
        return []
    return write_plots(
        settings.models_dir,
        history,
        scores,
        validation.labels,
        threshold,
        settings.threshold_quantile,
    )
