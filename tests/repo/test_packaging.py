"""The installed package holds every Python package of the repository: an image or wheel built
from pyproject.toml must not lose a sub-package that the source tree imports."""

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def declared_packages() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(config["packages"])


def source_packages() -> set[str]:
    found = set()
    for init in (REPO / "proto" / "datasentinel").rglob("__init__.py"):
        found.add(".".join(init.parent.relative_to(REPO / "proto").parts))
    for service in ("engine", "trainer", "producer"):
        for init in (REPO / service).rglob("__init__.py"):
            found.add(".".join(("datasentinel", *init.parent.relative_to(REPO).parts)))
    return found


def test_every_source_package_is_installed():
    assert source_packages() - declared_packages() == set()


def test_the_wheel_installs_only_the_datasentinel_namespace_and_its_commands(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("datasentinel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        commands = archive.read(entry_points).decode()
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == {"datasentinel"}
    assert "datasentinel/engine/server.py" in names
    assert "datasentinel/engine/security/auth.py" in names
    for command in ("datasentinel-engine", "datasentinel-train", "datasentinel-produce"):
        assert command in commands
