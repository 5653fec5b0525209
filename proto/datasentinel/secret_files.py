"""Reading the files that hold secrets (TLS certificates and keys, bearer tokens), shared by the
engine and its clients so both read them, and complain about them, the same way."""

from __future__ import annotations

from pathlib import Path


class SecretFileError(ValueError):
    """A file named in the settings cannot be used; the message names the setting."""


def read_secret_file(path: Path, setting: str) -> bytes:
    """The bytes of ``path``; SecretFileError naming ``setting`` when it is unreadable or empty
    (an empty certificate or token file is always a mistake, never a valid configuration)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecretFileError(f"cannot read {setting} {path}: {exc.strerror}") from None
    if not data.strip():
        raise SecretFileError(f"{setting} {path} is empty")
    return data


def parse_tokens(text: str) -> list[str]:
    """The tokens of a token file: one per line; blank lines and ``#`` comments ignored."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
