"""Hot model reload: new artifacts are loaded beside the served model, checked, warmed up, then
swapped in with one assignment, between two model calls.

The batcher reads ``core.model`` on every call and each result names the model that produced it,
so no request fails or mixes two models. A load that fails (corrupt or half-written files, a
config that does not match its model, a different input dimension) keeps the old model serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

from datasentinel.engine.errors import EngineError, ModelLoadError
from datasentinel.engine.file_identity import file_identity
from datasentinel.engine.metrics.collectors import metrics
from datasentinel.engine.model.session import LoadedModel, RuntimeOptions, load_model
from datasentinel.engine.scoring.core import ScoringCore
from datasentinel.model_config import CONFIG_FILENAME, MODEL_FILENAME, is_plain_file_name

log = logging.getLogger(__name__)


class ModelReloader:
    """Reloads when ``config.json`` or the model file it names changes, or when ``request()`` is
    called (SIGHUP). Watching both matters: the trainer writes config.json last, but a plain
    ``cp new/* models/`` copies it first, and the reload that fails on the half-copied pair must
    be tried again when model.onnx lands."""

    def __init__(
        self,
        core: ScoringCore,
        models_dir: Path,
        options: RuntimeOptions,
        poll_seconds: float,
        on_outcome: Callable[[bool], None] = lambda ok: None,
        threshold: float | None = None,
    ) -> None:
        self._core = core
        self._config = Path(models_dir) / CONFIG_FILENAME
        self._models_dir = Path(models_dir)
        self._options = options
        self._poll = poll_seconds
        self._on_outcome = on_outcome
        self._threshold = threshold  # the engine's own (ENGINE_THRESHOLD), kept across reloads
        self._wakeup = asyncio.Event()
        self._seen = self._signature()

    def request(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        """Watches until cancelled."""
        while True:
            try:
                await asyncio.wait_for(self._wakeup.wait(), self._poll if self._poll > 0 else None)
            except TimeoutError:
                pass
            asked, signature = self._wakeup.is_set(), self._signature()
            self._wakeup.clear()
            if asked or signature != self._seen:
                # Remember what was tried, so a bad file is not retried until it changes again.
                self._seen = signature
                await self.reload()

    async def reload(self) -> bool:
        """Loads the artifacts now; swaps them in when they are good. Returns whether it did."""
        old = self._core.model
        try:
            new = await asyncio.to_thread(
                load_model, self._models_dir, self._options, self._threshold
            )
            _check_compatible(old, new)
        except EngineError as exc:
            log.error("model reload failed, still serving %s: %s", old.model_version, exc)
            metrics().reloaded(False)
            self._on_outcome(False)
            return False
        self._core.model = new
        metrics().serving(*_identity(new), previous=_identity(old))
        log.info("model reloaded: %s -> %s", old.model_version, new.model_version)
        metrics().reloaded(True)
        self._on_outcome(True)
        return True

    def _signature(self) -> tuple:
        """What the watcher compares: both files' identity (mtime, size, inode)."""
        model = self._models_dir / _model_file(self._config)
        return file_identity(self._config), file_identity(model)


def _model_file(config: Path) -> str:
    """The model file config.json names (the default when it names none, or cannot be read: the
    reload then reports what is wrong with it)."""
    try:
        name = json.loads(config.read_text()).get("model_file", MODEL_FILENAME)
    except (OSError, ValueError, AttributeError):
        return MODEL_FILENAME
    return name if is_plain_file_name(name) else MODEL_FILENAME


def _identity(model: LoadedModel) -> tuple[str, str, str]:
    return model.model_version, model.config.model_sha256, model.provider


def _check_compatible(old: LoadedModel, new: LoadedModel) -> None:
    """Requests already validated against the old model must fit the new one."""
    if new.config.feature_names != old.config.feature_names:
        raise ModelLoadError(
            f"the new model takes {new.input_dim} features {new.config.feature_names[:4]}..., "
            f"the served one {old.input_dim} {old.config.feature_names[:4]}...: changing the "
            "input needs a restart of the engine"
        )
