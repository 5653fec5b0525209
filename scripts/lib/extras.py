"""Prints the extras a set of extras installs, implied ones included (dev brings engine, producer
and trainer; each service brings grpc), as pyproject.toml defines them; one name a line.

Usage: python extras.py PYPROJECT EXTRA[,EXTRA...]. Used by setup.sh to record what a venv holds,
so that a script asking for less than that runs no pip."""

import re
import sys
import tomllib


def closure(pyproject: str, wanted: list[str]) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    name = project["name"]
    extras = project.get("optional-dependencies", {})
    # A requirement on the project itself, e.g. "datasentinel[engine,producer]".
    self_ref = re.compile(rf"^\s*{re.escape(name)}\s*\[([^\]]*)\]")
    found: set[str] = set()
    todo = [w for w in wanted if w]
    while todo:
        extra = todo.pop()
        if extra in found:
            continue
        found.add(extra)
        for requirement in extras.get(extra, []):
            match = self_ref.match(requirement)
            if match:
                todo += [e.strip() for e in match.group(1).split(",")]
    return sorted(found)


if __name__ == "__main__":
    print("\n".join(closure(sys.argv[1], sys.argv[2].split(","))))
