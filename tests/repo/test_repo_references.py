"""Pointers inside the repository lead somewhere: README sections named by comments, and files
that .gitignore keeps on purpose."""

import re
import subprocess

from tests.conftest import REPO


def sections(readme: str) -> set[str]:
    text = (REPO / readme).read_text()
    return {m.group(1).strip() for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def test_readme_sections_named_in_the_constraints_exist():
    constraints = (REPO / "scripts" / "constraints.txt").read_text()
    named = re.findall(r'see ([\w/]+README\.md), "([^"]+)"', constraints)
    assert named
    for readme, section in named:
        assert section in sections(readme), (readme, section)


def test_sections_named_in_code_comments_exist():
    """Comments point at docs as PATH "Section" (e.g. engine/README.md "Security")."""
    pattern = re.compile(r'([\w/]*README\.md) "([^"]+)"')
    sources = [*REPO.glob("*/**/*.py"), *REPO.glob("docker/**/*.yaml")]
    named = {
        (readme, section)
        for path in sources
        if ".venv" not in path.parts
        for readme, section in pattern.findall(path.read_text())
    }
    assert named
    missing = [(r, s) for r, s in named if s not in sections(r)]
    assert missing == []


def test_links_between_the_docs_lead_somewhere():
    """Every relative link in a tracked Markdown file names a file that exists and, with a
    #fragment, a heading in it (GitHub's anchors)."""
    bad = []
    for doc in _tracked_markdown():
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, fragment = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            if not linked.exists():
                bad.append(f"{doc.relative_to(REPO)}: {target} (no such file)")
            elif fragment and linked.suffix == ".md" and fragment not in _anchors(linked):
                bad.append(f"{doc.relative_to(REPO)}: {target} (no such heading)")
    assert bad == []


def _tracked_markdown():
    names = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in names]


def _anchors(doc) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_files_gitignore_keeps_exist():
    kept = [
        line[1:]
        for line in (REPO / ".gitignore").read_text().splitlines()
        if line.startswith("!") and not any(c in line for c in "*?[")
    ]
    assert kept
    missing = [path for path in kept if not (REPO / path.lstrip("/")).exists()]
    assert missing == []
