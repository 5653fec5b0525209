"""What lands in the models folder: ``model.onnx`` and the ``config.json`` describing it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import onnx
import onnxruntime
import torch

import datasentinel
from datasentinel.model_config import (
    EXPECTED_OUTPUT,
    MODEL_FILENAME,
    Columns,
    MissingValues,
    ModelConfig,
    Normalisation,
    Severity,
    TrainingSummary,
    Versions,
    save_config,
    write_atomic,
)
from datasentinel.trainer.detector.graph import ScoringGraph
from datasentinel.trainer.export.onnx_export import OPSET


def build_config(
    onnx_bytes: bytes,
    graph: ScoringGraph,
    feature_names: list[str],
    threshold: float,
    training: TrainingSummary,
    columns: Columns,
    missing_cells: int,
    severity: Severity,
) -> ModelConfig:
    """The config for exactly these model bytes (their sha256 and a version derived from it).
    ``missing_cells``: how many training cells were missing and filled with ``graph.fill``."""
    sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    created_at = datetime.now(UTC).replace(microsecond=0)
    return ModelConfig(
        model_sha256=sha256,
        model_version=f"{created_at:%Y%m%dT%H%M%SZ}-{sha256[:8]}",
        created_at=created_at,
        feature_names=feature_names,
        input_dim=len(feature_names),
        threshold=threshold,
        normalisation=_normalisation(graph),
        versions=software_versions(),
        training=training,
        expected_output=EXPECTED_OUTPUT,
        columns=columns,
        missing_values=MissingValues(fill=graph.fill.tolist(), training_cells=missing_cells),
        severity=severity,
    )


def software_versions() -> Versions:
    return Versions(
        datasentinel=datasentinel.__version__,
        torch=torch.__version__,
        onnx=onnx.__version__,
        onnxruntime=onnxruntime.__version__,
        opset=OPSET,
    )


def write_artifacts(onnx_bytes: bytes, config: ModelConfig, models_dir: Path) -> tuple[Path, Path]:
    """Model first, config second, each atomically: an engine that reloads when config.json
    changes then always finds the model that config describes."""
    model_path = Path(models_dir) / MODEL_FILENAME
    write_atomic(model_path, onnx_bytes)
    return model_path, save_config(config, models_dir)


def _normalisation(graph: ScoringGraph) -> Normalisation:
    # The first (robust-scaled) group's centre and scale: what a person reading config.json
    # wants to compare a raw value with. The graph applies every scaling itself.
    first = graph.groups[0]
    return Normalisation(centre=first.centre.tolist(), scale=first.scale.tolist())
