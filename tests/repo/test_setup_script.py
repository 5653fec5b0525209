"""scripts/lib/setup.sh: pip runs only when the venv lacks an extra a script asks for. A fake venv
whose python records pip calls (and runs the real interpreter for anything else)."""

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.fixture
def fake_venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "pip-calls"
    python = venv / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -m ] && [ "$2" = pip ]; then echo "$*" >> "' + str(calls) + '"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)

    def ensure(*extras: str) -> list[str]:
        """Runs ensure_venv for each extras list in turn; returns the pip calls made so far."""
        steps = "; ".join(f"ensure_venv {e}" for e in extras)
        subprocess.run(
            ["bash", "-c", f'source "{REPO}/scripts/lib/setup.sh"; {steps}'],
            env={"PATH": "/usr/bin:/bin", "DATASENTINEL_VENV": str(venv)},
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return calls.read_text().splitlines() if calls.exists() else []

    return ensure


def test_a_venv_set_up_for_dev_serves_every_service_without_pip(fake_venv):
    calls = fake_venv("dev", "engine", "trainer", "producer", "trainer,engine,producer")
    assert len(calls) == 1 and calls[0].endswith("[dev]")


def test_a_missing_extra_is_installed_once_with_what_the_venv_had(fake_venv):
    assert len(fake_venv("engine", "engine")) == 1
    calls = fake_venv("trainer", "engine,trainer", "trainer")
    assert len(calls) == 2
    installed = calls[1].rsplit("[", 1)[1].rstrip("]").split(",")
    assert {"engine", "trainer"} <= set(installed)
