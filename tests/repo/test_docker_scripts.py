"""scripts/docker/lib.sh build_images: the trainer image gets a local torch wheel when one is found,
and the wheel is in docker/wheels (its build context) only while the trainer builds.

Runs lib.sh from a copy of scripts/docker in a temporary tree, with a fake `docker` that records
each call and what docker/wheels held at that moment; no Docker daemon is needed.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest

from tests.conftest import REPO

WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
FAKE_DOCKER = """#!/usr/bin/env bash
echo "$* | wheels: $(ls docker/wheels | tr '\\n' ' ')" >> "$FAKE_LOG"
if [ "$*" = "compose build trainer" ]; then
  [ -n "${FAKE_SLEEP:-}" ] && sleep "$FAKE_SLEEP"
  exit "${FAKE_TRAINER_RC:-0}"
fi
"""


@pytest.fixture
def tree(tmp_path):
    """A repository-shaped folder with lib.sh, a fake docker, and a wheel in a find-links folder."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts" / "docker", repo / "scripts" / "docker")
    (repo / "docker" / "wheels").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    links = tmp_path / "links"
    links.mkdir()
    (links / WHEEL).write_bytes(b"not really a wheel")
    return repo, bin_dir, links


def build(tree, *services, cwd=None, wait=True, **env):
    repo, bin_dir, links = tree
    environ = {
        **{k: v for k, v in os.environ.items() if k != "TORCH_WHEEL"},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,  # only PIP_FIND_LINKS below, not this machine's pip.conf
        "PIP_FIND_LINKS": str(links),
        "FAKE_LOG": str(repo / "log"),
        **env,
    }
    lib = repo / "scripts" / "docker" / "lib.sh"
    command = ["bash", "-c", f'source "{lib}" && build_images "$@"', "-", *services]
    process = subprocess.Popen(
        command,
        cwd=cwd or repo,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if wait:
        process.output = process.communicate(timeout=60)[0]
    return process


def calls(repo):
    return (repo / "log").read_text().splitlines() if (repo / "log").exists() else []


def test_wheel_from_pip_find_links_is_in_the_trainer_context_only(tree):
    repo = tree[0]
    process = build(tree, "trainer", "engine", "producer")
    assert process.returncode == 0
    assert calls(repo) == [
        f"compose build trainer | wheels: {WHEEL} ",
        "compose build engine producer | wheels: ",
    ]
    assert not list((repo / "docker" / "wheels").iterdir())


def test_torch_wheel_override_relative_to_the_callers_folder(tree, tmp_path):
    repo = tree[0]
    own = tmp_path / "mine"
    own.mkdir()
    name = "torch-2.12.1+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    (own / name).write_bytes(b"x")
    process = build(tree, "trainer", cwd=tmp_path, TORCH_WHEEL=f"mine/{name}")
    assert process.returncode == 0
    assert calls(repo) == [f"compose build trainer | wheels: {name} "]
    assert f"torch: from the local wheel {own / name}" in process.output


def test_no_local_wheel_says_how_to_point_at_one(tree):
    repo, _, links = tree
    (links / WHEEL).unlink()
    process = build(tree, "trainer")
    out = process.output
    assert process.returncode == 0
    assert "set TORCH_WHEEL=/path/to/torch-*.whl" in out and "downloads" in out
    assert calls(repo) == ["compose build trainer | wheels: "]


def test_wrong_torch_wheel_is_refused_before_building(tree, tmp_path):
    repo = tree[0]
    process = build(tree, "trainer", TORCH_WHEEL=str(tmp_path / "torch-2.13.0-cp312-win_amd64.whl"))
    assert process.returncode != 0
    assert "not a torch wheel for Python 3.11 on Linux" in process.output
    assert calls(repo) == []


def test_failed_trainer_build_removes_the_wheel_and_builds_nothing_else(tree):
    repo = tree[0]
    process = build(tree, "trainer", "engine", FAKE_TRAINER_RC="3")
    assert process.returncode == 3
    assert calls(repo) == [f"compose build trainer | wheels: {WHEEL} "]
    assert not list((repo / "docker" / "wheels").iterdir())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_trainer_build_removes_the_wheel(tree, sig):
    repo = tree[0]
    process = build(tree, "trainer", "engine", wait=False, FAKE_SLEEP="30")
    deadline = time.monotonic() + 30
    while not calls(repo) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (repo / "docker" / "wheels" / WHEEL).exists()
    os.killpg(process.pid, sig)  # as Ctrl-C (or a CI timeout) reaches the whole process group
    process.communicate(timeout=30)
    assert process.returncode != 0
    assert not list((repo / "docker" / "wheels").iterdir())
    assert len(calls(repo)) == 1  # the engine was not built after the interrupt


@pytest.mark.parametrize(
    ("script", "builds"),
    [
        ("upDockerStack.sh", ["trainer", "engine producer"]),
        ("runTrainerDocker.sh", ["trainer"]),
        ("buildImages.sh", ["trainer", "engine producer"]),
    ],
)
def test_scripts_that_build_the_trainer_use_the_local_wheel(tree, script, builds):
    repo, bin_dir, links = tree
    environ = {
        **{k: v for k, v in os.environ.items() if k != "TORCH_WHEEL"},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_FIND_LINKS": str(links),
        "FAKE_LOG": str(repo / "log"),
        "DATASENTINEL_SECRETS_DIR": str(repo / "secrets"),
    }
    subprocess.run(
        [repo / "scripts" / "docker" / script],
        cwd=repo,
        env=environ,
        capture_output=True,
        timeout=60,
    )
    built = [line for line in calls(repo) if line.startswith("compose build")]
    expected = [
        f"compose build {b} | wheels: {WHEEL + ' ' if b == 'trainer' else ''}" for b in builds
    ]
    assert built == expected
    assert not list((repo / "docker" / "wheels").iterdir())
