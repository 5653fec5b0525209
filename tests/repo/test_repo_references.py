"""Pointers inside the repository lead somewhere: README sections named by comments, and files
that .gitignore keeps on purpose."""

import re

from tests.conftest import REPO


def readme_sections() -> set[str]:
    text = (REPO / "README.md").read_text()
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def test_readme_sections_named_in_the_constraints_exist():
    named = re.findall(r'see README, "([^"]+)"', (REPO / "scripts" / "constraints.txt").read_text())
    assert named
    assert set(named) <= readme_sections()


def test_files_gitignore_keeps_exist():
    kept = [
        line[1:]
        for line in (REPO / ".gitignore").read_text().splitlines()
        if line.startswith("!") and not any(c in line for c in "*?[")
    ]
    assert kept
    missing = [path for path in kept if not (REPO / path.lstrip("/")).exists()]
    assert missing == []
