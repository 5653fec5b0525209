"""``train_and_export``: data -> trained scoring graph -> checked ONNX + config.json (+ plots)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasentinel.model_config import ModelConfig, TrainingSummary
from datasentinel.severity import table_from_scores
from datasentinel.trainer.data.dataset import Dataset, Split, load_dataset, split_dataset
from datasentinel.trainer.data.missing import fill_missing
from datasentinel.trainer.detector.graph import (
    ScoringGraph,
    build_scoring_graph,
    calibrate,
    score_rows,
)
from datasentinel.trainer.export.artifacts import build_config, write_artifacts
from datasentinel.trainer.export.onnx_export import export_model
from datasentinel.trainer.fitting.threshold import FitAndScore, Threshold, choose_threshold
from datasentinel.trainer.fitting.training import History, fit
from datasentinel.trainer.report.evaluation import Evaluation, evaluate
from datasentinel.trainer.report.plots import write_plots
from datasentinel.trainer.settings import TrainerSettings

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
    filled = fill_missing(_load_split(settings))
    split = filled.split
    log.info("fitting the scalings and the tail table")
    graph = build_scoring_graph(
        split.train.features,
        settings.hidden_dims,
        settings.latent_dim,
        settings.ensemble_size,
        fill=filled.fill,
    )
    history = fit(graph, split.train.features, split.validation.features, settings)
    calibrate(graph, split.train.features)
    scores = score_rows(graph, split.validation.features)
    threshold = choose_threshold(
        scores,
        split.train.features,
        split.validation.features,
        settings.threshold_quantile,
        settings.seed,
        _fold_model(settings, history.best_epoch),
    )
    evaluation = evaluate(scores, split.validation.labels, threshold.value)
    exported = export_model(graph, split.validation.features)
    onnx_bytes = exported.onnx_bytes
    summary = _training_summary(settings, split, history, evaluation, threshold, exported.warnings)
    config = build_config(
        onnx_bytes,
        graph,
        split.train.feature_names,
        threshold.value,
        summary,
        columns=split.train.columns,
        missing_cells=filled.cells,
        severity=table_from_scores(threshold.scores, threshold.source),
    )
    plot_paths = _plots(settings, history, split.validation, scores, threshold.value)
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


def _fold_model(settings: TrainerSettings, epochs: int) -> FitAndScore:
    """Trains a throw-away model as the served one was trained, on as many rows and for the
    ``epochs`` the served model kept (no validation split of its own: early stopping already
    chose the length), and scores held-out rows with it: for out-of-fold thresholds."""
    fold_settings = settings.model_copy(update={"epochs": epochs, "progress": False})

    def fit_and_score(train: np.ndarray, held_out: np.ndarray, seed: int) -> np.ndarray:
        torch.manual_seed(seed)
        graph = build_scoring_graph(
            train, settings.hidden_dims, settings.latent_dim, settings.ensemble_size
        )
        fit(graph, train, None, fold_settings.model_copy(update={"seed": seed}))
        calibrate(graph, train)
        return score_rows(graph, held_out)

    return fit_and_score


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
    settings: TrainerSettings,
    split: Split,
    history: History,
    evaluation: Evaluation | None,
    threshold: Threshold,
    export_warnings: list[str],
) -> TrainingSummary:
    # config.json's schema has room for these three; the summary prints the rest.
    metrics = {} if evaluation is None else _schema_metrics(evaluation)
    warnings = [*_history_warnings(settings, history), *threshold.warnings, *export_warnings]
    # Logged here, once, whichever step raised them; config.json and the summary carry them too.
    for warning in warnings:
        log.warning("%s", warning)
    return TrainingSummary(
        data_source=split.train.source,
        rows_train=len(split.train.features),
        rows_validation=len(split.validation.features),
        epochs_run=history.epochs_run,
        best_epoch=history.best_epoch,
        best_validation_loss=history.best_validation_loss,
        threshold_quantile=settings.threshold_quantile,
        threshold_rows=threshold.rows,
        threshold_source=threshold.source,
        threshold=threshold.value,
        warnings=warnings,
        seed=settings.seed,
        **metrics,
    )


def _history_warnings(settings: TrainerSettings, history: History) -> list[str]:
    if not history.still_improving():
        return []
    if history.cut_by_budget():
        return [
            f"training stopped at the fit budget ({history.epoch_cap} epochs for this many rows "
            f"x features, --fit-budget {settings.fit_budget:g}) while the validation loss was "
            f"still improving (best at epoch {history.best_epoch}); a larger --fit-budget may "
            "give a better model"
        ]
    return [
        f"training stopped at --epochs {settings.epochs} while the validation loss was still "
        f"improving (best at epoch {history.best_epoch}); more epochs may give a better model"
    ]


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
