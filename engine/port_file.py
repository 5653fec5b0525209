"""``--port-file``: tells a launcher which port this engine serves on, and that it serves.

With ``--port 0`` the kernel picks the port, so whoever started the engine must learn it from the
engine itself (a script that guessed, or read a log line, could end up talking to another engine).
The file is written once the engine is SERVING, atomically (temporary name, then rename), so a
reader that sees it can connect at once and never reads half a number."""

from __future__ import annotations

import os
from pathlib import Path

from datasentinel.engine.errors import EngineError


class PortFileError(EngineError):
    pass


def write_port_file(path: Path | None, port: int) -> None:
    """Writes ``port`` and a newline to ``path`` (nothing when ``path`` is None). Several workers
    sharing the port may each write it: same content, and each rename is atomic."""
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(f"{port}\n")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise PortFileError(f"cannot write the port file {path}: {e.strerror or e}") from None
