"""Loading the trainer's artifacts into an ONNX Runtime session, and running it.

Every check that can tell a user "these files are not a usable model" happens here, at load time,
so a bad model never reaches the serving path.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from datasentinel.engine.errors import ModelLoadError
from datasentinel.engine.model import providers as prov
from datasentinel.model_config import (
    CONFIG_FILENAME,
    ConfigError,
    ModelConfig,
    SchemaVersionError,
    load_config,
    served_version,
    sha256_file,
)
from datasentinel.severity import Curve

log = logging.getLogger(__name__)

TRAIN_HINT = "run the trainer first: ./scripts/runTrainer.sh (datasentinel-train --models-dir DIR)"


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run the model: providers in preference order, strictness, threads."""

    providers: tuple[str, ...] = prov.DEFAULT_PREFERENCE
    strict_providers: bool = False
    tensorrt: prov.TensorRTOptions = field(default_factory=prov.TensorRTOptions)
    intra_op_threads: int = 1


@dataclass(frozen=True)
class ModelOutput:
    """What one session run produced, tagged with the model that produced it."""

    scores: np.ndarray
    feature_errors: np.ndarray
    # The engine's threshold in force for this model (ENGINE_THRESHOLD, else config.json's).
    threshold: float
    # The version verdicts are reported under (model_config.served_version).
    model_version: str
    model_sha256: str = ""
    provider: str = ""
    # What the model expected per feature, in the features' units (config ``expected_output``);
    # None for models without that output (config.json schema < 3).
    expected: np.ndarray | None = None
    # The model fills in NaN inputs itself (config ``missing_values``).
    fills_missing: bool = False
    # Score -> severity table (config ``severity``); None: the model has none.
    severity_table: Curve | None = None
    feature_names: tuple[str, ...] = ()

    def rows(self, start: int, stop: int) -> ModelOutput:
        """The output for input rows ``start:stop`` (views, no copies)."""
        expected = None if self.expected is None else self.expected[start:stop]
        return dataclasses.replace(
            self,
            scores=self.scores[start:stop],
            feature_errors=self.feature_errors[start:stop],
            expected=expected,
        )


class LoadedModel:
    """A validated model: its config and a warmed-up ONNX Runtime session. ``threshold``, when
    given, is the engine's own (ENGINE_THRESHOLD): it replaces config.json's, and verdicts are
    reported under the version ``served_version`` gives for it."""

    def __init__(
        self,
        config: ModelConfig,
        session: ort.InferenceSession,
        provider: str,
        threshold: float | None = None,
    ):
        self.config = config
        self.provider = provider
        self.engine_threshold = threshold
        # The threshold in force for requests that do not set their own, and the version every
        # answer, ModelInfo, OIP metadata and metric label reports.
        self.threshold = config.threshold if threshold is None else threshold
        self.model_version = served_version(config, threshold)
        self._session = session
        self._outputs = [config.score_output, config.feature_errors_output]
        if config.expected_output is not None:
            self._outputs.append(config.expected_output)
        table = config.severity
        self._severity = None if table is None else Curve.from_table(table)
        self._names = tuple(config.feature_names)

    @property
    def input_dim(self) -> int:
        return self.config.input_dim

    def run(self, vectors: np.ndarray) -> ModelOutput:
        """Scores validated float32 rows ``[n, input_dim]``. Thread-safe (ORT sessions are)."""
        scores, errors, *expected = self._session.run(
            self._outputs, {self.config.input_name: vectors}
        )
        return ModelOutput(
            scores,
            errors,
            self.threshold,
            self.model_version,
            self.config.model_sha256,
            self.provider,
            expected=expected[0] if expected else None,
            fills_missing=self.config.accepts_missing,
            severity_table=self._severity,
            feature_names=self._names,
        )


def load_model(
    models_dir: Path, options: RuntimeOptions, threshold: float | None = None
) -> LoadedModel:
    """Reads, verifies and warms up the artifacts in ``models_dir``; raises ModelLoadError with a
    message that says what to do. ``threshold``: the engine's own, replacing config.json's."""
    models_dir = Path(models_dir)
    inside_models_dir(models_dir, models_dir / CONFIG_FILENAME)
    try:
        config = load_config(models_dir)
    except SchemaVersionError as exc:
        # Its message says what to do (upgrade or retrain); "run the trainer first" would read
        # as if there were no model at all.
        raise ModelLoadError(str(exc)) from None
    except ConfigError as exc:
        raise ModelLoadError(f"{exc}; {TRAIN_HINT}") from None
    # The real file from here on: the hash and the session read the same one, even if the link
    # is repointed meanwhile.
    model_path = inside_models_dir(models_dir, models_dir / config.model_file)
    _verify_file(model_path, config.model_sha256)
    session, provider = _open_session(model_path, options)
    _check_signature(session, config, model_path)
    model = LoadedModel(config, session, provider, threshold)
    _warm_up(model, model_path)
    log.info(
        "loaded model %s (%d features, threshold %.6g%s) from %s on %s",
        model.model_version,
        config.input_dim,
        model.threshold,
        "" if threshold is None else " set by the engine",
        model_path,
        provider,
    )
    return model


def inside_models_dir(models_dir: Path, path: Path) -> Path:
    """``path`` with every symbolic link resolved; raises ModelLoadError when that real file is
    outside the real models folder. config.json's ``model_file`` is checked as text (a plain
    name), but a ``model.onnx`` that is a link to another folder would still load any file the
    engine can read. Links that stay inside are fine: a Kubernetes volume mounts each file as a
    link to ``..data/<file>``, and ``..data`` is a link to a timestamped folder beside it."""
    real, folder = path.resolve(), models_dir.resolve()
    if not real.is_relative_to(folder):
        raise ModelLoadError(
            f"{path} is a link to {real}, outside the models folder {folder}: the engine only "
            "loads files inside the models folder; copy the artifacts into it (links inside it, "
            "as Kubernetes volumes make, are fine)"
        )
    return real


def _verify_file(model_path: Path, expected_sha256: str) -> None:
    if not model_path.is_file():
        raise ModelLoadError(f"{model_path} not found; {TRAIN_HINT}")
    actual = sha256_file(model_path)
    if actual != expected_sha256:
        raise ModelLoadError(
            f"{model_path} does not match config.json (sha256 {actual[:12]}... expected "
            f"{expected_sha256[:12]}...): the files come from different training runs or the "
            f"model is corrupt; {TRAIN_HINT}"
        )


def _open_session(model_path: Path, options: RuntimeOptions) -> tuple[ort.InferenceSession, str]:
    requested = prov.select_providers(
        options.providers, ort.get_available_providers(), options.strict_providers
    )
    session_options = ort.SessionOptions()
    # One thread per session: with tiny models, cross-thread hand-offs cost more than the maths,
    # and spinning threads steal the core the gRPC loop needs.
    session_options.intra_op_num_threads = options.intra_op_threads
    session_options.inter_op_num_threads = 1
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(
            str(model_path),
            sess_options=session_options,
            providers=requested,
            provider_options=prov.provider_options(requested, options.tensorrt),
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"{model_path} is not a loadable ONNX model ({first_line}); {TRAIN_HINT}"
        ) from None
    provider = prov.check_active(requested, session.get_providers(), options.strict_providers)
    return session, provider


def _check_signature(session: ort.InferenceSession, config: ModelConfig, path: Path) -> None:
    """The graph must take ``[batch, input_dim]`` floats and give the outputs config names (the
    score, the feature errors and, when named, the expected values)."""
    inputs = {i.name: i for i in session.get_inputs()}
    if config.input_name not in inputs or len(inputs) != 1:
        raise ModelLoadError(
            f"{path} inputs {sorted(inputs)} do not match config.json input '{config.input_name}'; "
            f"{TRAIN_HINT}"
        )
    shape = inputs[config.input_name].shape
    if len(shape) != 2 or shape[1] != config.input_dim:
        raise ModelLoadError(
            f"{path} takes vectors of shape {shape} but config.json says input_dim "
            f"{config.input_dim}; {TRAIN_HINT}"
        )
    outputs = {o.name for o in session.get_outputs()}
    named = {config.score_output, config.feature_errors_output, config.expected_output} - {None}
    missing = named - outputs
    if missing:
        raise ModelLoadError(f"{path} lacks outputs {sorted(missing)}; {TRAIN_HINT}")


def _warm_up(model: LoadedModel, path: Path) -> None:
    """One real inference before serving: providers like TensorRT build their engines on the first
    run, and a model that cannot run should fail here, not on a client's request."""
    probe = np.zeros((2, model.input_dim), dtype=np.float32)
    try:
        out = model.run(probe)
    except Exception as exc:
        raise ModelLoadError(f"{path} failed its warm-up inference: {exc}") from None
    if out.scores.shape != (2,) or out.feature_errors.shape != probe.shape:
        raise ModelLoadError(
            f"{path} returned shapes {out.scores.shape} and {out.feature_errors.shape} for "
            f"{probe.shape} input; expected (2,) and {probe.shape}; {TRAIN_HINT}"
        )
    if model.config.expected_output is not None and (
        out.expected is None or out.expected.shape != probe.shape
    ):
        shape = None if out.expected is None else out.expected.shape
        raise ModelLoadError(
            f"{path} returned shape {shape} for output '{model.config.expected_output}' and "
            f"{probe.shape} input; expected {probe.shape}; {TRAIN_HINT}"
        )
