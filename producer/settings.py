"""The producer's settings in one class: from flags, then environment variables, then defaults."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from datasentinel.producer.channel.settings import EngineConnectionSettings


class Show(StrEnum):
    """Which per-row lines to print while streaming (the summary is always printed)."""

    anomalies = "anomalies"  # the first few rows as a baseline, then flagged rows and failures
    all = "all"  # every row, and failures
    none = "none"  # no per-row lines: only the summary


class ProducerSettings(EngineConnectionSettings):
    """Streams vectors to a DataSentinel engine over ScoreStream and reports the results."""

    model_config = SettingsConfigDict(
        env_prefix="PRODUCER_",
        cli_kebab_case=True,
        cli_prog_name="datasentinel-produce",
        cli_implicit_flags=True,
        extra="ignore",
    )

    csv: Path | None = Field(
        None,
        json_schema_extra={"metavar": "FILE"},
        description="CSV file with a header row naming the model's feature columns (any order; "
        "other columns are kept as keys in --output); '-' reads standard input; unset streams "
        "the built-in synthetic data. Env: PRODUCER_CSV.",
    )
    label_column: str | None = Field(
        None,
        json_schema_extra={"metavar": "COLUMN"},
        description="Column of the CSV holding 0/1 labels: not sent, used for precision/recall/"
        "ROC-AUC and written to --output. Env: PRODUCER_LABEL_COLUMN.",
    )
    count: int = Field(
        2000, ge=1, description="Number of synthetic vectors to stream. Env: PRODUCER_COUNT."
    )
    seed: int = Field(
        1,
        ge=0,
        description="Seed of the synthetic data; the trainer uses 0, so 1 streams rows it never "
        "saw. Env: PRODUCER_SEED.",
    )
    batch_size: int = Field(
        64,
        ge=1,
        le=1_000_000,
        description="Vectors per message; lowered to the engine's max_batch_rows if above it. "
        "Env: PRODUCER_BATCH_SIZE.",
    )
    rate: float = Field(
        0,
        ge=0,
        allow_inf_nan=False,
        description="Average vectors per second to send; 0 sends as fast as the engine answers. "
        "Env: PRODUCER_RATE.",
    )
    max_in_flight: int = Field(
        8,
        ge=1,
        le=1024,
        description="Most messages sent but not yet answered; a slow engine holds the producer "
        "back. Env: PRODUCER_MAX_IN_FLIGHT.",
    )
    output: Path | None = Field(
        None,
        json_schema_extra={"metavar": "FILE"},
        description="Write a CSV with one row per input row, in input order: id, the key "
        "columns, score, is_anomaly, severity, threshold, model_version, top features, missing "
        "features (+label), error; '-' writes it to standard output (the per-row lines and the "
        "summary then go to standard error). Env: PRODUCER_OUTPUT.",
    )
    threshold: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        json_schema_extra={"metavar": "SCORE"},
        description="Flag rows scoring above this instead of the model's threshold (sent with "
        "every request; the answers report the threshold used). Env: PRODUCER_THRESHOLD.",
    )
    top_features: int = Field(
        3,
        ge=0,
        le=10_000,
        json_schema_extra={"metavar": "N"},
        description="Explain each row with its N most contributing features (name, share of the "
        "score, value sent, value expected), at most the model's feature count; 0 = none. "
        "Env: PRODUCER_TOP_FEATURES.",
    )
    ready_timeout: float = Field(
        30,
        gt=0,
        allow_inf_nan=False,
        description="Seconds to wait for the engine to report SERVING; exit code 3 after. "
        "Env: PRODUCER_READY_TIMEOUT.",
    )
    show: Show = Field(
        Show.anomalies,
        description="Per-row lines to print: 'anomalies' (the first 5 rows as a baseline, then "
        "flagged rows and failures), 'all', or 'none'. Env: PRODUCER_SHOW.",
    )

    # Balancing (producer/stream/fanout.py; engine/README.md "Failure behaviour"): one stream
    # feeds one replica.
    streams: int = Field(
        1,
        ge=1,
        le=256,
        description="Concurrent streams sharing the input; with --engine-target each goes to the "
        "next replica (round_robin), so use at least the number of replicas. "
        "Env: PRODUCER_STREAMS.",
    )

    # Recovery (producer/stream/retry.py; engine/README.md "Failure behaviour"): reconnect,
    # resend, hang detection.
    max_retry_seconds: float = Field(
        60,
        gt=0,
        allow_inf_nan=False,
        description="How long to keep reconnecting and resending while no answer arrives; then "
        "the unanswered vectors fail with the reason (exit code 1). "
        "Env: PRODUCER_MAX_RETRY_SECONDS.",
    )
    answer_timeout: float = Field(
        30,
        gt=0,
        allow_inf_nan=False,
        description="Seconds the oldest unanswered message may wait before the stream counts as "
        "hung: it is cancelled and its messages resent on a new one. "
        "Env: PRODUCER_ANSWER_TIMEOUT.",
    )

    @model_validator(mode="after")
    def _label_needs_csv(self) -> ProducerSettings:
        if self.label_column is not None and self.csv is None:
            raise ValueError("--label-column needs --csv (the synthetic data has its own labels)")
        return self
