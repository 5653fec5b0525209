"""The engine of an earlier git revision, run from this checkout's environment, so that a
benchmark can measure the code before a change beside the code after it, in one run on the same
machine (``--baseline REV`` in overload.py and serving.py)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def baseline_env(rev: str, tmp: Path) -> dict[str, str]:
    """Environment variables that make ``python -m datasentinel.engine`` run the engine of git
    revision ``rev`` (e.g. the commit before a change): its files, exported with ``git archive``
    into ``tmp``, laid out as the installed ``datasentinel`` package on PYTHONPATH, which Python
    searches before the editable install's finder. The rest (grpcio, onnxruntime) is this
    environment's."""
    source = tmp / f"src-{rev}"
    source.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    dirs = tomllib.loads((source / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"
    ]
    package = tmp / f"pkg-{rev}" / "datasentinel"
    package.mkdir(parents=True)
    for entry in (source / dirs["datasentinel"]).iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in dirs.items():
        if name.count(".") == 1 and not (package / name.split(".")[1]).exists():
            (package / name.split(".")[1]).symlink_to(source / folder)
    return {"PYTHONPATH": str(package.parent)}
