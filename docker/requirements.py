"""Prints the requirements of one extra of pyproject.toml, one per line, for Docker builds.

Images install their dependencies from this list before the source is copied, so a code edit
does not reinstall them. Extras that name the project itself (``datasentinel[grpc]``) are expanded.

    python docker/requirements.py engine [--drop onnxruntime]
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements(project: dict, extra: str) -> list[str]:
    name = project["name"]
    found = list(project["dependencies"])
    for requirement in project["optional-dependencies"][extra]:
        inner = re.fullmatch(rf"{re.escape(name)}\[(.+)\]", requirement)
        if inner:
            for nested in inner.group(1).split(","):
                found += [r for r in requirements(project, nested.strip()) if r not in found]
        elif requirement not in found:
            found.append(requirement)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extra")
    parser.add_argument("--drop", action="append", default=[], help="package to leave out")
    args = parser.parse_args()
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    for requirement in requirements(project, args.extra):
        package = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
        if package not in args.drop:
            print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
