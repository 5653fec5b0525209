"""Engine settings: one object, from flags (``datasentinel-engine --help``) and environment."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from datasentinel.engine.model.providers import DEFAULT_PREFERENCE
from datasentinel.settings_loader import COMMAS


class EngineSettings(BaseSettings):
    """DataSentinel engine: scores feature vectors over gRPC with the trainer's ONNX model.
    Every flag can also be set by the environment variable named in its help."""

    model_config = SettingsConfigDict(
        env_prefix="ENGINE_",
        cli_kebab_case=True,
        cli_prog_name="datasentinel-engine",
        cli_implicit_flags=True,
        extra="ignore",
    )

    models_dir: Path = Field(
        Path("models"),
        validation_alias=AliasChoices("models_dir", "MODELS_DIR", "ENGINE_MODELS_DIR"),
        description="Folder holding model.onnx and config.json from the trainer. Env: MODELS_DIR.",
    )
    bind_host: str = Field(
        "127.0.0.1",
        description="Address to listen on; loopback by default (secure by default): 0.0.0.0 "
        "serves every interface (containers do). Env: ENGINE_BIND_HOST.",
    )
    port: int = Field(
        9000, ge=0, le=65535, description="Port to listen on; 0 picks a free one. Env: ENGINE_PORT."
    )
    port_file: Path | None = Field(
        None,
        description="Once SERVING, write the port it listens on to this file (for launchers "
        "that start it with --port 0). Env: ENGINE_PORT_FILE.",
    )
    providers: Annotated[list[str], NoDecode, COMMAS] = Field(
        list(DEFAULT_PREFERENCE),
        description="ONNX Runtime execution providers in preference order, comma-separated "
        "(e.g. CUDAExecutionProvider,CPUExecutionProvider); unavailable ones are skipped with "
        "a warning. Env: ENGINE_PROVIDERS.",
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
    http_port: int = Field(
        -1,
        ge=-1,
        le=65535,
        description="Port of the REST/JSON Open Inference Protocol (/v2/...; HTTPS with the TLS "
        "files, the same token and limits as gRPC); 0 picks a free one, -1 (the default) turns "
        "it off. Env: ENGINE_HTTP_PORT.",
    )
    reload_poll_seconds: float = Field(
        2.0,
        ge=0,
        description="How often to look for new artifacts in the models folder (config.json "
        "changed) and hot-swap them; 0 = only on SIGHUP. Env: ENGINE_RELOAD_POLL_SECONDS.",
    )
    threshold: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Decision threshold for every request that does not set its own, instead of "
        "config.json's; unless it is the one the trainer chose, answers, ModelInfo and metrics "
        "report the model version as VERSION+threshold=X. Default: config.json's. "
        "Env: ENGINE_THRESHOLD.",
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
        "the scoring thread (stream messages; unary calls always use the thread, where calls "
        "arriving together share a model call). Env: ENGINE_INLINE_ROWS.",
    )
    stream_window: int = Field(
        64,
        ge=1,
        description="Requests of one stream scored concurrently (answers stay in order). "
        "Env: ENGINE_STREAM_WINDOW.",
    )
    max_message_mb: int = Field(
        64,
        ge=1,
        description="Largest gRPC message accepted, MiB: a larger one is answered "
        "RESOURCE_EXHAUSTED (in a stream, that message only; the stream goes on); above 1.25x "
        "this (at least +1 MiB) gRPC itself ends the call. Env: ENGINE_MAX_MESSAGE_MB.",
    )
    grace_seconds: float = Field(
        10.0,
        ge=0,
        description="On SIGTERM/SIGINT, how long in-flight calls may take to finish. "
        "Env: ENGINE_GRACE_SECONDS.",
    )
    log_level: str = Field(
        "INFO",
        json_schema_extra={"metavar": "LEVEL"},
        description="Logging level: DEBUG, INFO, WARNING or ERROR. Env: ENGINE_LOG_LEVEL.",
    )

    # Security (engine/security/, engine/metrics/endpoint.py; engine/README.md "Security").
    tls_cert_file: Path | None = Field(
        None,
        description="Server certificate (PEM, chain allowed): serve TLS on the gRPC port. Reread "
        "when the file changes (rotation without restart). Env: ENGINE_TLS_CERT_FILE.",
    )
    tls_key_file: Path | None = Field(
        None, description="Private key of the server certificate (PEM). Env: ENGINE_TLS_KEY_FILE."
    )
    tls_client_ca_file: Path | None = Field(
        None,
        description="CA certificates (PEM) for mutual TLS: clients must present a certificate "
        "signed by one of them. Env: ENGINE_TLS_CLIENT_CA_FILE.",
    )
    tls_expiry_warning_days: float = Field(
        14.0,
        ge=0,
        description="Log a warning when the TLS certificate expires within this many days (at "
        "start, on rotation, and once when a running engine gets there); 0 = never. An expired "
        "or not yet valid certificate is always refused. Env: ENGINE_TLS_EXPIRY_WARNING_DAYS.",
    )
    auth_token_file: Path | None = Field(
        None,
        description="Accepted bearer tokens, one per line ('#' comments): every RPC but health "
        "checks needs 'authorization: Bearer <token>'. Reread when it changes. "
        "Env: ENGINE_AUTH_TOKEN_FILE.",
    )
    require_auth: bool = Field(
        False,
        description="Refuse to start (exit 2) when a non-loopback address would be served "
        "without TLS and a token (or mutual TLS), or metrics without a token; without it, a "
        "warning. Env: ENGINE_REQUIRE_AUTH.",
    )
    reflection: bool = Field(
        True,
        description="Serve gRPC server reflection (grpcurl, Postman); behind the token when one "
        "is set. Env: ENGINE_REFLECTION.",
    )
    metrics_bind_host: str = Field(
        "127.0.0.1",
        description="Address of the /metrics endpoint; loopback by default. "
        "Env: ENGINE_METRICS_BIND_HOST.",
    )
    metrics_require_token: bool = Field(
        False,
        description="/metrics needs 'Authorization: Bearer <token>' (a token of "
        "ENGINE_AUTH_TOKEN_FILE). Env: ENGINE_METRICS_REQUIRE_TOKEN.",
    )
    metrics_idle_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A /metrics request must arrive within this many seconds of connecting (and "
        "its answer be sent by then), however it is sent; then the connection is closed. "
        "Env: ENGINE_METRICS_IDLE_TIMEOUT_SECONDS.",
    )
    metrics_max_connections: int = Field(
        32,
        ge=1,
        description="/metrics connections served at once; more are closed at once (each holds a "
        "thread for at most the timeout above). Env: ENGINE_METRICS_MAX_CONNECTIONS.",
    )
    healthcheck_ca_file: Path | None = Field(
        None,
        description="datasentinel-healthcheck: CA to verify the engine's certificate; "
        "default ENGINE_TLS_CERT_FILE itself (right for a self-signed certificate). "
        "Env: ENGINE_HEALTHCHECK_CA_FILE.",
    )
    healthcheck_cert_file: Path | None = Field(
        None,
        description="datasentinel-healthcheck: client certificate for mutual TLS. "
        "Env: ENGINE_HEALTHCHECK_CERT_FILE.",
    )
    healthcheck_key_file: Path | None = Field(
        None,
        description="datasentinel-healthcheck: key of that client certificate. "
        "Env: ENGINE_HEALTHCHECK_KEY_FILE.",
    )
    # --- Process and connection liveness (supervision of workers, keepalive, idle connections)
    worker_restart_limit: int = Field(
        5,
        ge=0,
        description="Workers that may die and be started again within the restart window; one "
        "more death stops the engine (exit 1) so the orchestrator restarts it whole; 0 = stop on "
        "the first death. Env: ENGINE_WORKER_RESTART_LIMIT.",
    )
    worker_restart_window_seconds: float = Field(
        60.0,
        gt=0,
        description="The window, seconds, over which worker deaths are counted. "
        "Env: ENGINE_WORKER_RESTART_WINDOW_SECONDS.",
    )
    keepalive_seconds: float = Field(
        30.0,
        gt=0,
        description="The engine pings each client connection after this many seconds without "
        "traffic, to find peers that vanished. Env: ENGINE_KEEPALIVE_SECONDS.",
    )
    keepalive_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="A ping not answered within this many seconds closes the connection. "
        "Env: ENGINE_KEEPALIVE_TIMEOUT_SECONDS.",
    )
    min_client_ping_interval_seconds: float = Field(
        10.0,
        ge=0,
        description="Clients may send keepalive pings this often (also on idle connections); "
        "pinging faster gets the connection closed (GOAWAY too_many_pings). Client keepalive "
        "times must be at least this. Env: ENGINE_MIN_CLIENT_PING_INTERVAL_SECONDS.",
    )
    max_connection_idle_seconds: float = Field(
        300.0,
        ge=0,
        description="A connection with no call in flight for this long is closed (the client "
        "reconnects when it needs to), so abandoned connections are reclaimed; 0 = never. "
        "Env: ENGINE_MAX_CONNECTION_IDLE_SECONDS.",
    )
    max_connection_age_seconds: float = Field(
        0.0,
        ge=0,
        description="Connections are asked to go away (GOAWAY) after this long, so clients "
        "spread over new replicas behind a load balancer; 0 = never. "
        "Env: ENGINE_MAX_CONNECTION_AGE_SECONDS.",
    )
    max_connection_age_grace_seconds: float = Field(
        0.0,
        ge=0,
        description="After max connection age, how long calls in flight may finish before the "
        "connection is closed; 0 = as long as they take. "
        "Env: ENGINE_MAX_CONNECTION_AGE_GRACE_SECONDS.",
    )

    # Overload and resource limits (engine/scoring/admission.py, engine/protocol/decoding.py;
    # engine/README.md "Failure behaviour").
    max_concurrent_rpcs: int = Field(
        256,
        ge=1,
        description="Calls served at once by one engine process (unary calls and streams; "
        "health checks have their own budget); more get RESOURCE_EXHAUSTED at once. "
        "Env: ENGINE_MAX_CONCURRENT_RPCS.",
    )
    max_calls_per_peer: int = Field(
        128,
        ge=1,
        description="Of those, how many one client address may hold, so that one client (or "
        "a stranger with idle streams) cannot take them all; set it to max-concurrent-rpcs "
        "when every client comes through one proxy. Env: ENGINE_MAX_CALLS_PER_PEER.",
    )
    max_health_watches: int = Field(
        64,
        ge=0,
        description="Health Watch streams open at once (they need no token and never take a "
        "scoring slot); health Check calls are always answered. "
        "Env: ENGINE_MAX_HEALTH_WATCHES.",
    )
    max_health_watches_per_peer: int = Field(
        8,
        ge=0,
        description="Health Watch streams one client address may hold. "
        "Env: ENGINE_MAX_HEALTH_WATCHES_PER_PEER.",
    )
    stream_idle_seconds: float = Field(
        300.0,
        ge=0,
        description="A stream that sends no request for this long is closed (UNAVAILABLE; "
        "nothing of it is lost, clients reopen it when they have data); 0 = never. "
        "Env: ENGINE_STREAM_IDLE_SECONDS.",
    )
    max_streams_per_connection: int = Field(
        128,
        ge=1,
        description="Calls open at once on one client connection (HTTP/2 max concurrent "
        "streams); a client opening more waits. Env: ENGINE_MAX_STREAMS_PER_CONNECTION.",
    )
    max_inflight_rows: int = Field(
        131072,
        ge=1,
        description="Vectors queued or being scored at once (at least max-merge-rows): a unary "
        "call that would exceed it gets RESOURCE_EXHAUSTED at once, a stream message waits "
        "for room. Env: ENGINE_MAX_INFLIGHT_ROWS.",
    )
    stream_buffer_mb: float = Field(
        4.0,
        gt=0,
        description="Payload one stream may have read but not yet answered, MiB (at least one "
        "message); past it the engine stops reading and the client is slowed by flow control. "
        "Env: ENGINE_STREAM_BUFFER_MB.",
    )

    @property
    def engine_cache_dir(self) -> Path:
        return self.trt_engine_cache_dir or self.models_dir / "trt_cache"

    @property
    def log_level_number(self) -> int:
        return logging.getLevelName(self.log_level.upper())
