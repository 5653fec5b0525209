"""The trainer -> engine contract: the schema of ``config.json`` beside ``model.onnx``.

The trainer writes it, the engine validates it on load; both import this module, as both sides of
the gRPC API import the generated code. Bump ``SCHEMA_VERSION`` on any incompatible change.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCHEMA_VERSION = 1
CONFIG_FILENAME = "config.json"
MODEL_FILENAME = "model.onnx"

# Names of the ONNX graph's tensors. The graph takes raw features and does the standardisation,
# the reconstruction and the error maths itself, so no consumer re-implements them.
INPUT_NAME = "features"
SCORE_OUTPUT = "score"
FEATURE_ERRORS_OUTPUT = "feature_errors"


class ConfigError(ValueError):
    """config.json is missing, unreadable or does not describe the model next to it."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class Normalisation(_Frozen):
    """Per-feature standardisation fitted on the training data (also baked into the graph)."""

    mean: list[float]
    std: list[float]

    @field_validator("std")
    @classmethod
    def _positive(cls, std: list[float]) -> list[float]:
        if any(not (s > 0 and math.isfinite(s)) for s in std):
            raise ValueError("every std must be finite and > 0")
        return std


class Versions(_Frozen):
    """Versions of the software that produced the artifacts."""

    datasentinel: str
    torch: str | None = None
    onnx: str | None = None
    onnxruntime: str | None = None
    opset: int


class TrainingSummary(_Frozen):
    """How the model was trained, for people and for audits; the engine only reports it."""

    data_source: str
    rows_train: int = Field(ge=1)
    rows_validation: int = Field(ge=1)
    epochs_run: int = Field(ge=1)
    best_epoch: int = Field(ge=1)
    best_validation_loss: float
    threshold_quantile: float = Field(gt=0, lt=1)
    seed: int
    # Present only when the data had labels.
    roc_auc: float | None = None
    precision: float | None = None
    recall: float | None = None


class ModelConfig(_Frozen):
    """Everything a consumer needs to serve ``model.onnx`` and to check it is the right file."""

    schema_version: Literal[1] = SCHEMA_VERSION
    model_file: str = MODEL_FILENAME
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    model_version: str = Field(min_length=1)
    created_at: datetime
    feature_names: list[str] = Field(min_length=1)
    input_dim: int = Field(ge=1)
    threshold: float
    normalisation: Normalisation
    input_name: str = INPUT_NAME
    score_output: str = SCORE_OUTPUT
    feature_errors_output: str = FEATURE_ERRORS_OUTPUT
    versions: Versions
    training: TrainingSummary

    @field_validator("model_file")
    @classmethod
    def _plain_file_name(cls, name: str) -> str:
        # The engine opens models_dir / model_file: a path would let a config (from a shared or
        # mounted folder) make it read any file the engine can, so only a bare name is valid.
        if not is_plain_file_name(name):
            raise ValueError(
                f"must be a plain file name inside the models folder (such as "
                f"{MODEL_FILENAME!r}), not {name!r}"
            )
        return name

    @field_validator("threshold")
    @classmethod
    def _finite_threshold(cls, threshold: float) -> float:
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError("threshold must be a finite number >= 0")
        return threshold

    @model_validator(mode="after")
    def _dimensions_agree(self) -> ModelConfig:
        sizes = {
            "feature_names": len(self.feature_names),
            "normalisation.mean": len(self.normalisation.mean),
            "normalisation.std": len(self.normalisation.std),
        }
        wrong = {name: n for name, n in sizes.items() if n != self.input_dim}
        if wrong:
            raise ValueError(f"input_dim is {self.input_dim} but {wrong} disagree")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError("feature_names must be unique")
        return self


def is_plain_file_name(name: object) -> bool:
    """A bare file name (no folder part, not ``.`` or ``..``): it names a file inside the
    models folder and nothing else."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\0")
    )


def load_config(models_dir: Path) -> ModelConfig:
    """Reads and validates ``models_dir/config.json``; raises ConfigError saying what is wrong."""
    path = Path(models_dir) / CONFIG_FILENAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return ModelConfig.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path} is not a valid model config: {problems}") from None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path``, then renames it into place, so a reader
    (a running engine) sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_config(config: ModelConfig, models_dir: Path) -> Path:
    """Writes ``config.json`` atomically into ``models_dir``; returns its path."""
    path = Path(models_dir) / CONFIG_FILENAME
    write_atomic(path, (config.model_dump_json(indent=2) + "\n").encode())
    return path
