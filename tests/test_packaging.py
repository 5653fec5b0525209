"""The installed package holds every Python package of the repository: an image or wheel built
from pyproject.toml must not lose a sub-package that the source tree imports."""

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def declared_packages() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(config["packages"])


def source_packages() -> set[str]:
    found = set()
    for root in ("engine", "trainer", "producer", "proto/datasentinel"):
        for init in (REPO / root).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / Path(root).parent)
            found.add(".".join(relative.parts))
    return found


def test_every_source_package_is_installed():
    assert source_packages() - declared_packages() == set()
