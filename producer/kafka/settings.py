"""The Kafka bridge's settings in one class: from flags, then environment variables, then defaults.

The engine's address and the TLS/token settings towards it are the producer's, inherited from one
class (producer/channel/settings.py: same flags, same variables), so one environment configures
both; the broker's own TLS/SASL settings are
``--kafka-security-protocol``, ``--kafka-sasl-*`` and ``--kafka-ssl-*``, passed to librdkafka as
they are, plus ``--kafka-option KEY=VALUE`` for anything else librdkafka accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from datasentinel.producer.channel.settings import EngineConnectionSettings
from datasentinel.settings_loader import COMMAS


class BridgeSettings(EngineConnectionSettings):
    """Reads events from Kafka topics, scores them with a DataSentinel engine and writes one
    verdict per event to an output topic (unscorable events to a dead-letter topic)."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_",
        cli_kebab_case=True,
        cli_prog_name="datasentinel-bridge",
        cli_implicit_flags=True,
        extra="ignore",
    )

    # -- the broker -------------------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "localhost:9092",
        min_length=1,
        json_schema_extra={"metavar": "HOST:PORT[,...]"},
        description="Kafka bootstrap servers. Env: BRIDGE_KAFKA_BOOTSTRAP.",
    )
    kafka_topic: Annotated[list[str], NoDecode, COMMAS] = Field(
        ["events"],
        min_length=1,
        json_schema_extra={"metavar": "NAME[,...]"},
        description="Input topic(s), comma-separated; a name starting with ^ is a regular "
        "expression (every matching topic). Env: BRIDGE_KAFKA_TOPIC.",
    )
    kafka_group: str = Field(
        "datasentinel-bridge",
        min_length=1,
        json_schema_extra={"metavar": "ID"},
        description="Consumer group: bridges in one group share the input's partitions. "
        "Env: BRIDGE_KAFKA_GROUP.",
    )
    kafka_output_topic: str = Field(
        "verdicts",
        min_length=1,
        json_schema_extra={"metavar": "NAME"},
        description="Topic the verdicts are written to (key = the input message's key). "
        "Env: BRIDGE_KAFKA_OUTPUT_TOPIC.",
    )
    kafka_dead_letter_topic: str = Field(
        "events-dead-letter",
        min_length=1,
        json_schema_extra={"metavar": "NAME"},
        description="Topic for events that cannot be scored, each with the reason and its "
        "source. Env: BRIDGE_KAFKA_DEAD_LETTER_TOPIC.",
    )
    transactional: bool = Field(
        False,
        description="Exactly-once: verdicts, dead letters and input offsets are committed in "
        "one Kafka transaction (readers use isolation.level=read_committed); needs a broker "
        "with transactions. Env: BRIDGE_TRANSACTIONAL.",
    )
    kafka_transactional_id: str | None = Field(
        None,
        json_schema_extra={"metavar": "ID"},
        description="Transactional id with --transactional, unique per bridge instance and "
        "stable across its restarts (a restart then fences the old one at once); default: the "
        "group and the host name. Env: BRIDGE_KAFKA_TRANSACTIONAL_ID.",
    )
    kafka_security_protocol: str | None = Field(
        None,
        json_schema_extra={"metavar": "PROTOCOL"},
        description="plaintext, ssl, sasl_plaintext or sasl_ssl (librdkafka's "
        "security.protocol). Env: BRIDGE_KAFKA_SECURITY_PROTOCOL.",
    )
    kafka_sasl_mechanism: str | None = Field(
        None,
        json_schema_extra={"metavar": "MECHANISM"},
        description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER. "
        "Env: BRIDGE_KAFKA_SASL_MECHANISM.",
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user name. Env: BRIDGE_KAFKA_SASL_USERNAME."
    )
    kafka_sasl_password_file: Path | None = Field(
        None,
        description="File whose first line is the SASL password (not the password itself, so it "
        "stays out of the process list). Env: BRIDGE_KAFKA_SASL_PASSWORD_FILE.",
    )
    kafka_ssl_ca_file: Path | None = Field(
        None,
        description="CA certificate(s) (PEM) of the brokers. Env: BRIDGE_KAFKA_SSL_CA_FILE.",
    )
    kafka_ssl_cert_file: Path | None = Field(
        None,
        description="Client certificate (PEM) for mutual TLS with the brokers. "
        "Env: BRIDGE_KAFKA_SSL_CERT_FILE.",
    )
    kafka_ssl_key_file: Path | None = Field(
        None,
        description="Key of the client certificate (PEM). Env: BRIDGE_KAFKA_SSL_KEY_FILE.",
    )
    kafka_option: Annotated[list[str], NoDecode, COMMAS] = Field(
        [],
        json_schema_extra={"metavar": "KEY=VALUE[,...]"},
        description="Further librdkafka settings for every client, e.g. "
        "session.timeout.ms=6000. Env: BRIDGE_KAFKA_OPTION.",
    )

    # -- batching and flow ------------------------------------------------------------------
    batch_size: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Most events per engine request; lowered to the engine's max_batch_rows. "
        "Env: BRIDGE_BATCH_SIZE.",
    )
    batch_wait_ms: float = Field(
        5,
        ge=0,
        allow_inf_nan=False,
        description="Longest an event waits for its batch to fill before the batch is sent "
        "anyway, so a slow partition does not hold the rest. Env: BRIDGE_BATCH_WAIT_MS.",
    )
    max_in_flight: int = Field(
        8,
        ge=1,
        le=1024,
        description="Most engine requests sent and not yet answered. Env: BRIDGE_MAX_IN_FLIGHT.",
    )
    max_pending: int = Field(
        10_000,
        ge=1,
        description="Most events read and not yet committed; above it the partitions are "
        "paused until verdicts catch up. Env: BRIDGE_MAX_PENDING.",
    )
    max_message_bytes: int = Field(
        1_048_576,
        ge=1,
        description="Input messages larger than this go to the dead-letter topic. "
        "Env: BRIDGE_MAX_MESSAGE_BYTES.",
    )
    commit_interval_ms: float = Field(
        200,
        gt=0,
        allow_inf_nan=False,
        description="How often answered offsets (or, with --transactional, the transaction) "
        "are committed. Env: BRIDGE_COMMIT_INTERVAL_MS.",
    )
    drain_timeout: float = Field(
        20,
        gt=0,
        allow_inf_nan=False,
        description="Seconds SIGTERM or a rebalance waits for in-flight events to be answered "
        "and acknowledged before what is left is handed back uncommitted. "
        "Env: BRIDGE_DRAIN_TIMEOUT.",
    )
    answer_timeout: float = Field(
        30,
        gt=0,
        allow_inf_nan=False,
        description="Seconds an engine request may take before it is sent again. "
        "Env: BRIDGE_ANSWER_TIMEOUT.",
    )
    threshold: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        json_schema_extra={"metavar": "SCORE"},
        description="Flag events scoring above this instead of the model's threshold. "
        "Env: BRIDGE_THRESHOLD.",
    )
    top_features: int = Field(
        3,
        ge=0,
        le=10_000,
        json_schema_extra={"metavar": "N"},
        description="Explain each verdict with its N most contributing features; 0 = none. "
        "Env: BRIDGE_TOP_FEATURES.",
    )
    ready_timeout: float = Field(
        60,
        gt=0,
        allow_inf_nan=False,
        description="Seconds to wait at start for the engine to report SERVING. "
        "Env: BRIDGE_READY_TIMEOUT.",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics on this port (0: any free port, logged); unset: "
        "none. Env: BRIDGE_METRICS_PORT.",
    )
    metrics_bind_host: str = Field(
        "127.0.0.1",
        description="Address the metrics endpoint listens on. Env: BRIDGE_METRICS_BIND_HOST.",
    )

    @field_validator("kafka_transactional_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_option")
    @classmethod
    def _options_are_pairs(cls, value: list[str]) -> list[str]:
        for option in value:
            if "=" not in option:
                raise ValueError(f"{option!r} is not KEY=VALUE")
        return value

    @model_validator(mode="after")
    def _distinct_topics(self) -> BridgeSettings:
        outputs = {self.kafka_output_topic, self.kafka_dead_letter_topic}
        if len(outputs) < 2 or outputs & set(self.kafka_topic):
            raise ValueError("input, output and dead-letter topics must be different topics")
        return self
