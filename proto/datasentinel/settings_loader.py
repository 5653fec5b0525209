"""Command-line parsing shared by the trainer, engine and producer: one settings class read from
flags and environment variables, help that reads like a normal CLI's, and bad input reported as
one line naming the flag and its variable (exit code 2) instead of a traceback.

pydantic-settings derives metavars from type hints (``{Path,null}``, ``list[int]``); it has no
per-field metavar, but takes the ``add_argument`` it calls, which is where ours are put in. A field
can name its own with ``Field(json_schema_extra={"metavar": "HOST"})``.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import sys
import typing
from argparse import ArgumentParser
from collections.abc import Callable, Sequence
from pathlib import Path
from types import UnionType
from typing import TypeVar

from pydantic import AliasChoices, BeforeValidator, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, CliApp, CliSettingsSource, SettingsError

EXIT_USAGE = 2
# Shown as the default of optional settings, and accepted on the command line to clear one that
# the environment set ("null" before; "none" is a value of the producer's --show).
UNSET = "unset"

S = TypeVar("S", bound=BaseSettings)
_FIELD_SOURCE = re.compile(r'error parsing value for field "(\w+)" from source "(\w+)"')


def split_commas(value: object) -> object:
    """A list setting given as ``a,b`` (or JSON, ``["a","b"]``); empty means unset. Flags accept
    both already; variables do with this and ``NoDecode``, which stops pydantic-settings from
    requiring JSON: ``Annotated[list[str], NoDecode, COMMAS]``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


COMMAS = BeforeValidator(split_commas)


class UsageError(Exception):
    """Settings could not be read. ``exit_code`` 0 after ``--help``, else 2; ``str()`` is the
    one line to log (empty after ``--help``)."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_settings(settings_cls: type[S], argv: Sequence[str] | None = None) -> S:
    """``settings_cls`` from ``argv`` (default ``sys.argv[1:]``) and the environment; raises
    UsageError for ``--help`` and for anything that cannot be used as given."""
    source = CliSettingsSource(
        settings_cls,
        cli_exit_on_error=False,  # errors come back as exceptions, so they become one line
        cli_parse_none_str=UNSET,
        add_argument_method=_with_metavar(settings_cls),
    )
    try:
        return CliApp.run(settings_cls, cli_args=_args(argv), cli_settings_source=source)
    except SystemExit as exc:  # --help: argparse printed it
        raise UsageError("", exc.code if isinstance(exc.code, int) else EXIT_USAGE) from None
    except ValidationError as exc:
        raise UsageError(f"invalid settings: {describe_validation(settings_cls, exc)}") from None
    except SettingsError as exc:
        message = describe_settings_error(settings_cls, exc)
        raise UsageError(f"invalid settings: {message}") from None


def run_command(
    settings_cls: type[S],
    argv: Sequence[str] | None,
    log: logging.Logger,
    command: Callable[[S], int],
) -> int:
    """Reads ``settings_cls`` and returns ``command(settings)``; a usage error is one logged line
    and exit code 2 (``--help``: its text and 0), never a traceback. The one entry shell of all
    three services."""
    try:
        settings = load_settings(settings_cls, argv)
    except UsageError as exc:
        if str(exc):
            # A no-op where the service set up logging before reading its settings.
            logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            log.error("%s", exc)
        return exc.exit_code
    return command(settings)


def _args(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)


def flag(settings_cls: type[BaseSettings], name: str) -> str:
    """The command-line flag of field ``name``: ``--models-dir``."""
    alias = settings_cls.model_fields[name].validation_alias
    first = alias.choices[0] if isinstance(alias, AliasChoices) else name
    return "--" + str(first).replace("_", "-")


def env_vars(settings_cls: type[BaseSettings], name: str) -> list[str]:
    """The environment variables that set field ``name``, as the help names them."""
    alias = settings_cls.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        upper = [str(c) for c in alias.choices if str(c).isupper()]
        if upper:
            return upper
    return [f"{settings_cls.model_config.get('env_prefix', '')}{name}".upper()]


def describe_validation(settings_cls: type[BaseSettings], error: ValidationError) -> str:
    """'--port / ENGINE_PORT: should be ... (got 'abc')' for each problem, on one line."""
    parts = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ").removeprefix("Input ")
        loc = problem["loc"]
        if loc and loc[0] in settings_cls.model_fields:
            where = _names(settings_cls, str(loc[0]))
            if len(loc) > 1:
                where += f" (item {loc[1] + 1 if isinstance(loc[1], int) else loc[1]})"
            message = f"{where}: {message} (got {problem.get('input')!r})"
        parts.append(message)
    return "; ".join(parts)


def describe_settings_error(settings_cls: type[BaseSettings], error: SettingsError) -> str:
    """pydantic-settings' parse errors, reworded to name the variable, its value and the form
    expected; argparse's (unknown flag, missing value) point at ``--help``."""
    text = str(error)
    match = _FIELD_SOURCE.search(text)
    if match and match.group(1) in settings_cls.model_fields:
        name = match.group(1)
        names = env_vars(settings_cls, name)
        value = next((os.environ[v] for v in names if v in os.environ), None)
        where = names[0] if match.group(2) != "CliSettingsSource" else flag(settings_cls, name)
        expected = "JSON"
        if _is_list(settings_cls, name):
            expected = 'a JSON list, such as \'["a","b"]\''
        return f"{where}: cannot read {value!r}: expected {expected}"
    text = text.removeprefix("error parsing CLI: ")
    prog = settings_cls.model_config.get("cli_prog_name") or "the command"
    return f"{text} (see {prog} --help)"


def _is_list(settings_cls: type[BaseSettings], name: str) -> bool:
    return _is_list_type(_without_none(settings_cls.model_fields[name].annotation))


def _is_list_type(kind) -> bool:
    return typing.get_origin(kind) in (list, tuple, set, frozenset)


def _names(settings_cls: type[BaseSettings], name: str) -> str:
    return " / ".join([flag(settings_cls, name), *env_vars(settings_cls, name)])


def _with_metavar(settings_cls: type[BaseSettings]):
    """``ArgumentParser.add_argument`` with our metavar for each settings field."""

    def add_argument(parser: ArgumentParser, *args, **kwargs):
        field = settings_cls.model_fields.get(kwargs.get("dest", ""))
        if field is not None and "metavar" in kwargs:
            kwargs["metavar"] = metavar(kwargs["dest"], field)
        return parser.add_argument(*args, **kwargs)

    return add_argument


def metavar(name: str, field: FieldInfo) -> str:
    """The placeholder shown after a flag: the field's own ``metavar`` if it names one, else one
    from its type and name: FILE, DIR, PATH, N, PORT, NUMBER, SECONDS, HOST, NAME, TEXT, LIST or
    the choices as ``a|b|c``."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("metavar"), str):
        return extra["metavar"]
    kind = _without_none(field.annotation)
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        return "|".join(str(v) for v in typing.get_args(kind))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return "|".join(str(m.value) for m in kind)
    if _is_list_type(kind):
        return "LIST"
    if kind is Path:
        return "DIR" if name.endswith("_dir") else "FILE" if name.endswith("_file") else "PATH"
    if kind is int:
        return "PORT" if name.endswith("port") else "N"
    if kind is float:
        return "SECONDS" if name.endswith("_seconds") or name.endswith("_timeout") else "NUMBER"
    if name.endswith("host"):
        return "HOST"
    return "NAME" if name.endswith("name") else "TEXT"


def _without_none(annotation):
    """``X`` from ``X | None``; constrained types (PositiveInt) from their Annotated base."""
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            annotation = rest[0]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation
