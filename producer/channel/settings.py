"""Where the engine is and how to reach it: the settings every client of the engine shares.

``datasentinel-produce`` and ``datasentinel-bridge`` both inherit these fields, so one
environment configures both: the address from ``ENGINE_HOST`` / ``ENGINE_PORT`` /
``ENGINE_TARGET`` (shared with Compose and the scripts), TLS and the token from the
``PRODUCER_TLS_*`` / ``PRODUCER_AUTH_TOKEN_FILE`` variables, whatever the tool's own prefix.

Each field's first alias is its flag's name (``--tls-ca-file``); pydantic-settings would also
read it as a variable (``TLS_CA_FILE``), which nobody expects to configure a client, so the
environment source here drops those bare names (``NamedVariablesOnly``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
)


def _named(flag: str, variable: str) -> AliasChoices:
    return AliasChoices(flag, variable)


class EngineConnectionSettings(BaseSettings):
    """The engine's address, TLS towards it and the bearer token it expects."""

    engine_host: str = Field(
        "localhost",
        min_length=1,
        validation_alias=_named("engine_host", "ENGINE_HOST"),
        description="Host name or address of the engine. Env: ENGINE_HOST.",
    )
    engine_port: int = Field(
        9000,
        ge=1,
        le=65535,
        validation_alias=_named("engine_port", "ENGINE_PORT"),
        description="gRPC port of the engine. Env: ENGINE_PORT.",
    )
    engine_target: str | None = Field(
        None,
        min_length=1,
        validation_alias=_named("engine_target", "ENGINE_TARGET"),
        json_schema_extra={"metavar": "TARGET"},
        description="gRPC target naming every engine replica, balanced round_robin; overrides "
        "--engine-host/--engine-port. E.g. dns:///engine-headless:9000 or "
        "ipv4:127.0.0.2:9000,127.0.0.3:9000. Env: ENGINE_TARGET.",
    )

    # Security (producer/channel/security.py; engine/README.md "Security"): TLS, mutual TLS, the
    # bearer token.
    tls: bool = Field(
        False,
        validation_alias=_named("tls", "PRODUCER_TLS"),
        description="Connect with TLS, trusting the system's CAs (implied by the other "
        "--tls-* settings). Env: PRODUCER_TLS.",
    )
    tls_ca_file: Path | None = Field(
        None,
        validation_alias=_named("tls_ca_file", "PRODUCER_TLS_CA_FILE"),
        description="CA certificate(s) (PEM) that signed the engine's certificate; turns TLS on. "
        "Env: PRODUCER_TLS_CA_FILE.",
    )
    tls_cert_file: Path | None = Field(
        None,
        validation_alias=_named("tls_cert_file", "PRODUCER_TLS_CERT_FILE"),
        description="Client certificate (PEM) for mutual TLS. Env: PRODUCER_TLS_CERT_FILE.",
    )
    tls_key_file: Path | None = Field(
        None,
        validation_alias=_named("tls_key_file", "PRODUCER_TLS_KEY_FILE"),
        description="Key of the client certificate (PEM). Env: PRODUCER_TLS_KEY_FILE.",
    )
    tls_server_name: str | None = Field(
        None,
        validation_alias=_named("tls_server_name", "PRODUCER_TLS_SERVER_NAME"),
        description="Name to expect in the engine's certificate when it differs from "
        "--engine-host (e.g. connecting by IP). Env: PRODUCER_TLS_SERVER_NAME.",
    )
    auth_token_file: Path | None = Field(
        None,
        validation_alias=_named("auth_token_file", "PRODUCER_AUTH_TOKEN_FILE"),
        description="File whose first line is the token sent as 'authorization: Bearer <token>'. "
        "Env: PRODUCER_AUTH_TOKEN_FILE.",
    )

    @field_validator("engine_target", mode="before")
    @classmethod
    def _empty_target_is_unset(cls, value: object) -> object:
        # Compose files pass ENGINE_TARGET: ${ENGINE_TARGET:-}: empty means "use host and port".
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def target(self) -> str:
        """The engine's address as gRPC wants it: --engine-target when set."""
        if self.engine_target is not None:
            return self.engine_target
        host = self.engine_host
        if ":" in host and not host.startswith("["):  # a bare IPv6 address
            host = f"[{host}]"
        return f"{host}:{self.engine_port}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env = (
            NamedVariablesOnly(settings_cls)
            if isinstance(env_settings, EnvSettingsSource)
            else env_settings
        )
        return init_settings, env, dotenv_settings, file_secret_settings


class NamedVariablesOnly(EnvSettingsSource):
    """The environment without the bare flag names of the connection fields: ``TLS=1`` or
    ``AUTH_TOKEN_FILE=...`` left over from another program must not switch a client's TLS or
    token (only ``PRODUCER_TLS`` and friends do). ``ENGINE_HOST`` and the like are both the
    flag's name and the documented variable, so they stay."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        variables = super()._load_env_vars()
        bare = _bare_names(EngineConnectionSettings.model_fields)
        return {name: value for name, value in variables.items() if name.lower() not in bare}


def _bare_names(fields: Mapping[str, FieldInfo]) -> set[str]:
    """The lower-case first alias of every field whose documented variable is another name."""
    bare: set[str] = set()
    for field in fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            flag, *variables = (str(choice).lower() for choice in alias.choices)
            if flag not in variables:
                bare.add(flag)
    return bare
