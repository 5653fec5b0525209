"""``--help`` of the three services reads like a normal CLI's (PATH, N, HOST, LIST, not Python
types), and list settings take a comma list from flags and variables alike."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from datasentinel.engine.settings import EngineSettings
from datasentinel.settings_loader import load_settings
from datasentinel.trainer.settings import TrainerSettings
from tests.conftest import REPO

# What pydantic-settings shows by default: {Path,null}, {list[int],null}, list[str], (default: null)
PYTHON_TYPES = ("{", "null", "list[", "Path", "str]", " str ", " int ", " float ")


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("engine", ["--models-dir DIR", "--port PORT", "--bind-host HOST", "--providers LIST",
                    "--tls-cert-file FILE", "--workers N", "--grace-seconds SECONDS"]),
        ("trainer", ["--data FILE", "--hidden-dims LIST", "--csv-header auto|yes|no",
                     "--latent-dim N", "(default: unset)"]),
        ("producer", ["--engine-host HOST", "--engine-port PORT", "--csv FILE",
                      "--show anomalies|all|none", "--rate NUMBER"]),
    ],
)  # fmt: skip
def test_help_names_values_not_python_types(service, expected):
    result = subprocess.run(
        [sys.executable, "-m", service, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps lines; compare as one line
    for python_type in PYTHON_TYPES:
        assert python_type not in text, f"{python_type!r} in {service} --help"
    for shown in expected:
        assert shown in text


def test_list_settings_take_a_comma_list_from_flags_and_variables(monkeypatch):
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    flag = load_settings(EngineSettings, ["--providers", ",".join(providers)])
    assert flag.providers == providers
    monkeypatch.setenv("ENGINE_PROVIDERS", "CUDAExecutionProvider, CPUExecutionProvider")
    assert load_settings(EngineSettings, []).providers == providers
    monkeypatch.setenv("ENGINE_PROVIDERS", '["CPUExecutionProvider"]')  # JSON still works
    assert load_settings(EngineSettings, []).providers == ["CPUExecutionProvider"]
    monkeypatch.setenv("TRAINER_HIDDEN_DIMS", "32,16")
    assert load_settings(TrainerSettings, []).hidden_dims == [32, 16]


def test_unset_clears_an_optional_setting_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRAINER_DATA", "data.csv")
    assert load_settings(TrainerSettings, []).data == Path("data.csv")
    assert load_settings(TrainerSettings, ["--data", "unset"]).data is None
