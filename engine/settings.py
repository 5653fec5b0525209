"""Engine settings: one object, from flags (``python -m engine --help``) and environment."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.providers import DEFAULT_PREFERENCE


class EngineSettings(BaseSettings):
    """DataSentinel engine: scores feature vectors over gRPC with the trainer's ONNX model.
    Every flag can also be set by the environment variable named in its help."""

    model_config = SettingsConfigDict(
        env_prefix="ENGINE_",
        cli_kebab_case=True,
        cli_prog_name="python -m engine",
        cli_implicit_flags=True,
        extra="ignore",
    )

    models_dir: Path = Field(
        Path("models"),
        validation_alias=AliasChoices("models_dir", "MODELS_DIR", "ENGINE_MODELS_DIR"),
        description="Folder holding model.onnx and config.json from the trainer. Env: MODELS_DIR.",
    )
    bind_host: str = Field("0.0.0.0", description="Address to listen on. Env: ENGINE_BIND_HOST.")
    port: int = Field(
        9000, ge=0, le=65535, description="Port to listen on; 0 picks a free one. Env: ENGINE_PORT."
    )
    providers: list[str] = Field(
        list(DEFAULT_PREFERENCE),
        description="ONNX Runtime execution providers in preference order; unavailable ones are "
        "skipped with a warning. Env: ENGINE_PROVIDERS, a JSON list such as "
        "'[\"CPUExecutionProvider\"]'.",
    )
    strict_providers: bool = Field(
        False,
        description="Fail at start instead of falling back when a preferred provider is missing "
        "or fails to start. Env: ENGINE_STRICT_PROVIDERS.",
    )
    trt_fp16: bool = Field(False, description="TensorRT: allow fp16 kernels. Env: ENGINE_TRT_FP16.")
    trt_engine_cache: bool = Field(
        True, description="TensorRT: cache built engines on disk. Env: ENGINE_TRT_ENGINE_CACHE."
    )
    trt_engine_cache_dir: Path | None = Field(
        None,
        description="TensorRT engine cache folder; default <models-dir>/trt_cache (must be "
        "writable). Env: ENGINE_TRT_ENGINE_CACHE_DIR.",
    )
    intra_op_threads: int = Field(
        1, ge=1, description="ONNX Runtime threads per model call. Env: ENGINE_INTRA_OP_THREADS."
    )
    max_batch_rows: int = Field(
        4096, ge=1, description="Most vectors accepted in one request. Env: ENGINE_MAX_BATCH_ROWS."
    )
    max_merge_rows: int = Field(
        8192,
        ge=1,
        description="Most vectors the batcher merges into one model call. "
        "Env: ENGINE_MAX_MERGE_ROWS.",
    )
    max_queue: int = Field(
        1024,
        ge=1,
        description="Requests waiting for the model before new ones get RESOURCE_EXHAUSTED. "
        "Env: ENGINE_MAX_QUEUE.",
    )
    workers: int = Field(
        0,
        ge=0,
        description="Engine processes sharing the port, each with its own model session and "
        "batcher; 0 = one per CPU core. Env: ENGINE_WORKERS.",
    )
    metrics_port: int = Field(
        9464,
        ge=-1,
        le=65535,
        description="Port of the Prometheus /metrics endpoint (HTTP); 0 picks a free one, -1 "
        "turns it off. Env: ENGINE_METRICS_PORT.",
    )
    reload_poll_seconds: float = Field(
        2.0,
        ge=0,
        description="How often to look for new artifacts in the models folder (config.json "
        "changed) and hot-swap them; 0 = only on SIGHUP. Env: ENGINE_RELOAD_POLL_SECONDS.",
    )
    oip_model_name: str = Field(
        "datasentinel",
        description="Model name on the Open Inference Protocol (KServe v2) endpoint. "
        "Env: ENGINE_OIP_MODEL_NAME.",
    )
    inline_rows: int = Field(
        64,
        ge=0,
        description="Model calls of at most this many vectors run on the event loop instead of "
        "the scoring thread. Env: ENGINE_INLINE_ROWS.",
    )
    stream_window: int = Field(
        64,
        ge=1,
        description="Requests of one stream scored concurrently (answers stay in order). "
        "Env: ENGINE_STREAM_WINDOW.",
    )
    max_message_mb: int = Field(
        64, ge=1, description="Largest gRPC message accepted, MiB. Env: ENGINE_MAX_MESSAGE_MB."
    )
    grace_seconds: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM/SIGINT, how long in-flight calls may take to finish. "
        "Env: ENGINE_GRACE_SECONDS.",
    )
    log_level: str = Field("INFO", description="Logging level. Env: ENGINE_LOG_LEVEL.")

    @property
    def engine_cache_dir(self) -> Path:
        return self.trt_engine_cache_dir or self.models_dir / "trt_cache"

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level.upper())
