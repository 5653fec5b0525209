"""Noticing that a file changed without reading it: what the model watcher, the TLS files and the
token file compare between two looks."""

from __future__ import annotations

import os
from pathlib import Path


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(mtime, size, inode), or None when the file cannot be seen. The inode catches a file
    replaced by a rename (the trainer's atomic writes, a Kubernetes Secret swapping a symlink,
    which stat follows) even within one mtime tick."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
