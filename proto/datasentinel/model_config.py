"""The trainer -> engine contract: the schema of ``config.json`` beside ``model.onnx``.

The trainer writes it, the engine validates it on load; both import this module, as both sides of
the gRPC API import the generated code. Bump ``SCHEMA_VERSION`` on any incompatible change, and
keep reading the versions earlier trainers wrote (``SchemaVersion``) so their models keep serving.

Versions: 1, the first; 2 adds to ``training`` how the threshold was set (``threshold_rows``,
``threshold_source``) and the trainer's ``warnings``; 3 names the normalisation for what it holds
(``centre``/``scale``, were ``mean``/``std``), and adds the columns' roles (``columns``), the
missing-value policy (``missing_values``), the severity table (``severity``), the graph's
``expected`` output and the threshold the trainer chose (``training.threshold``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SchemaVersion = Literal[1, 2, 3]
SCHEMA_VERSION = 3  # the version this trainer writes
READABLE_SCHEMA_VERSIONS: tuple[int, ...] = get_args(SchemaVersion)
# The training fields a version-1 file cannot carry (a version-1 engine would refuse them).
V2_TRAINING_FIELDS = ("threshold_rows", "threshold_source", "warnings")
# The fields a version-2 (or older) file cannot carry.
V3_FIELDS = ("columns", "missing_values", "severity", "expected_output")
V3_TRAINING_FIELDS = ("threshold",)
RETRAIN = "retrain with this version's trainer (datasentinel-train)"
CONFIG_FILENAME = "config.json"
MODEL_FILENAME = "model.onnx"

# Names of the ONNX graph's tensors. The graph takes raw features and does the standardisation,
# the reconstruction and the error maths itself, so no consumer re-implements them.
INPUT_NAME = "features"
SCORE_OUTPUT = "score"
FEATURE_ERRORS_OUTPUT = "feature_errors"
# Version 3: what the model expected for each feature, in the feature's own units.
EXPECTED_OUTPUT = "expected"


class ConfigError(ValueError):
    """config.json is missing, unreadable or does not describe the model next to it."""


class SchemaVersionError(ConfigError):
    """config.json's schema_version is missing or not one this code reads: its message says
    what to do, so callers need add nothing."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class Normalisation(_Frozen):
    """Per-feature centre (the training median) and scale (IQR / 1.349, floored at the feature's
    resolution) of the first autoencoder group: what a person compares a raw value with. The
    graph applies every scaling itself. Files before version 3 name them ``mean`` and ``std``
    (they held the same median and IQR scale); they are read into these fields."""

    model_config = ConfigDict(populate_by_name=True)

    centre: list[float] = Field(validation_alias=AliasChoices("centre", "mean"))
    scale: list[float] = Field(validation_alias=AliasChoices("scale", "std"))

    @field_validator("scale")
    @classmethod
    def _positive(cls, scale: list[float]) -> list[float]:
        if any(not (s > 0 and math.isfinite(s)) for s in scale):
            raise ValueError("every scale must be finite and > 0")
        return scale


class Columns(_Frozen):
    """Version 3. The roles of the training table's other columns, by name (the features are
    ``feature_names``): what a scoring file may carry beside the features."""

    # Kept with each row, never features: ids, timestamps, entities.
    keys: list[str] = []
    # Left out of everything by the user's choice.
    ignored: list[str] = []
    # The 0/1 label column training was evaluated on, if any.
    label: str | None = None


class MissingValues(_Frozen):
    """Version 3. Missing values (NaN) are filled in by the graph itself, so the engine accepts
    NaN for this model and names the missing features in its answer."""

    # median: each feature's training median.
    policy: Literal["median"] = "median"
    # Per feature, the value the graph puts in place of NaN.
    fill: list[float]
    # How many training cells were missing and filled in.
    training_cells: int = Field(default=0, ge=0)

    @field_validator("fill")
    @classmethod
    def _finite(cls, fill: list[float]) -> list[float]:
        if not all(math.isfinite(v) for v in fill):
            raise ValueError("every fill value must be finite")
        return fill


class Severity(_Frozen):
    """Version 3. Score -> severity: the share of held-out training rows that scored lower,
    read off this table by linear interpolation (datasentinel.severity)."""

    # Ascending scores and their levels (ascending, in [0, 1]), the same number of each.
    scores: list[float] = Field(min_length=2)
    levels: list[float] = Field(min_length=2)
    # How many held-out rows the table was taken from, and which.
    rows: int = Field(ge=1)
    source: Literal["validation", "out_of_fold"]

    @model_validator(mode="after")
    def _ascending(self) -> Severity:
        if len(self.scores) != len(self.levels):
            raise ValueError("scores and levels must have the same length")
        if any(not math.isfinite(v) for v in self.scores):
            raise ValueError("scores must be finite")
        if not (_ascending(self.scores) and _ascending(self.levels)):
            raise ValueError("scores and levels must be ascending")
        if not 0 <= self.levels[0] <= self.levels[-1] <= 1:
            raise ValueError("levels must lie in [0, 1]")
        return self


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
    # Version 2. How many scores the threshold quantile was taken from, and which: the held-out
    # validation split, or the out-of-fold scores of cross-fitted models.
    threshold_rows: int | None = Field(default=None, ge=1)
    threshold_source: Literal["validation", "out_of_fold"] | None = None
    # Version 2. What the trainer wants a person to know about this model (e.g. a threshold set
    # from few rows); the engine reports them, it does not act on them.
    warnings: list[str] = []
    # Version 3. The threshold the trainer chose: a config whose ``threshold`` differs was edited,
    # and its verdicts get another version (served_version).
    threshold: float | None = None


class ModelConfig(_Frozen):
    """Everything a consumer needs to serve ``model.onnx`` and to check it is the right file."""

    schema_version: SchemaVersion = SCHEMA_VERSION
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
    # Version 3 (None in older files: no expected values, NaN refused, no severity).
    expected_output: str | None = None
    columns: Columns | None = None
    missing_values: MissingValues | None = None
    severity: Severity | None = None

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
            "normalisation.centre": len(self.normalisation.centre),
            "normalisation.scale": len(self.normalisation.scale),
        }
        if self.missing_values is not None:
            sizes["missing_values.fill"] = len(self.missing_values.fill)
        wrong = {name: n for name, n in sizes.items() if n != self.input_dim}
        if wrong:
            raise ValueError(f"input_dim is {self.input_dim} but {wrong} disagree")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError("feature_names must be unique")
        return self

    @model_validator(mode="after")
    def _fields_exist_in_its_version(self) -> ModelConfig:
        if self.schema_version == 1:
            used = [f"training.{name}" for name in V2_TRAINING_FIELDS if _is_set(self, name)]
            if used:
                raise ValueError(f"{', '.join(used)}: need schema_version 2, this file says 1")
        if self.schema_version < 3:
            used = [name for name in V3_FIELDS if getattr(self, name) is not None]
            used += [f"training.{name}" for name in V3_TRAINING_FIELDS if _is_set(self, name)]
            if used:
                raise ValueError(
                    f"{', '.join(used)}: need schema_version 3, this file says "
                    f"{self.schema_version}"
                )
        return self

    @property
    def key_columns(self) -> list[str]:
        return [] if self.columns is None else list(self.columns.keys)

    @property
    def accepts_missing(self) -> bool:
        return self.missing_values is not None


def served_version(config: ModelConfig, threshold: float | None = None) -> str:
    """The version verdicts are reported under: the trainer's, with ``+threshold=X`` added when
    the threshold in force (``threshold``, else the config's) is not the one the trainer chose,
    so verdicts under different thresholds never look alike. Files before version 3 do not
    record the trainer's choice: their edited threshold is only visible as ``threshold``."""
    in_force = config.threshold if threshold is None else threshold
    chosen = config.training.threshold
    if chosen is None and threshold is None:
        return config.model_version
    if chosen is not None and in_force == chosen:
        return config.model_version
    return f"{config.model_version}+threshold={in_force:.6g}"


def _ascending(values: list[float]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


def _is_set(config: ModelConfig, training_field: str) -> bool:
    """Set to something other than its default (a saved version-1 config writes the defaults)."""
    return getattr(config.training, training_field) not in (None, [])


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
    _check_schema_version(text, path)
    try:
        return ModelConfig.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path} is not a valid model config: {problems}") from None


def _check_schema_version(text: str, path: Path) -> None:
    """Refuses a config of a version this code does not read, before the full validation: its
    field errors would only say why a file of another version is not this one."""
    try:
        data = json.loads(text)
    except ValueError:
        return  # the full validation names the JSON error
    if not isinstance(data, dict):
        return
    if "schema_version" not in data:
        raise SchemaVersionError(
            f"{path} has no schema_version, which every DataSentinel trainer writes: it is not "
            f"a model config, or an edited one; {RETRAIN}"
        )
    version = data["schema_version"]
    if type(version) is int and version in READABLE_SCHEMA_VERSIONS:  # not True, not 1.0
        return
    raise SchemaVersionError(
        f"{path} schema_version {version!r} is not one this DataSentinel reads "
        f"({', '.join(map(str, READABLE_SCHEMA_VERSIONS))}): {_version_advice(version)}"
    )


def _version_advice(version: object) -> str:
    """What to do about an unreadable version: a newer one needs a newer engine."""
    if type(version) is not int:
        return f"it must be a whole number (was the file edited?); {RETRAIN}"
    if version > SCHEMA_VERSION:
        return f"it was written by a newer trainer; upgrade the engine, or {RETRAIN}"
    return f"no trainer writes version {version} (was the file edited?); {RETRAIN}"


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
    write_atomic(path, (config_json(config) + "\n").encode())
    return path


def config_json(config: ModelConfig) -> str:
    """The config as its version's trainer wrote it, which engines of that version can read: no
    fields of later versions, and the normalisation named as that version named it."""
    if config.schema_version >= 3:
        return config.model_dump_json(indent=2)
    training = set(V3_TRAINING_FIELDS)
    if config.schema_version == 1:
        training |= set(V2_TRAINING_FIELDS)
    data = json.loads(config.model_dump_json(exclude={"training": training, **_V3_TOP}))
    norm = data["normalisation"]
    data["normalisation"] = {"mean": norm["centre"], "std": norm["scale"]}
    return json.dumps(data, indent=2)


_V3_TOP = {name: True for name in V3_FIELDS}
