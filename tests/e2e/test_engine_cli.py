"""Start-up mistakes a user can fix end the engine (and the trainer and producer) with exit code 2
and one line naming the flag or variable, never a traceback; a busy port, gRPC or metrics, is
found before the engine says it listens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, build_tiny_model, engine_command

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_clear_line(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    for text in expected:
        assert text in errors[0], errors[0]


# (service, bad flag, bad environment, what the line must name)
BAD_SETTINGS = [
    ("engine", ["--port", "abc"], {}, ["--port / ENGINE_PORT", "valid integer", "'abc'"]),
    ("engine", ["--port", "70000"], {}, ["--port / ENGINE_PORT", "65535", "'70000'"]),
    ("engine", [], {"ENGINE_PORT": "abc"}, ["--port / ENGINE_PORT", "valid integer", "'abc'"]),
    ("engine", [], {"ENGINE_WORKERS": "-1"}, ["--workers / ENGINE_WORKERS", "'-1'"]),
    ("engine", ["--no-such-flag"], {}, ["unrecognized arguments: --no-such-flag", "--help"]),
    ("trainer", ["--epochs", "0"], {}, ["--epochs / TRAINER_EPOCHS", "greater than 0"]),
    ("trainer", [], {"TRAINER_SEED": "x"}, ["--seed / TRAINER_SEED", "valid integer", "'x'"]),
    ("producer", ["--engine-port", "abc"], {}, ["--engine-port / ENGINE_PORT", "'abc'"]),
    ("producer", [], {"PRODUCER_COUNT": "-3"}, ["--count / PRODUCER_COUNT", "'-3'"]),
]


@pytest.mark.parametrize(
    ("service", "args", "env", "expected"),
    BAD_SETTINGS,
    ids=[f"{s}-{' '.join(a) or next(iter(e))}" for s, a, e, _ in BAD_SETTINGS],
)
def test_bad_setting_is_one_line_and_exit_2(tmp_path, service, args, env, expected):
    # A models folder that exists: a setting that slipped through would fail later, differently.
    command = [sys.executable, "-m", service, *args]
    if service == "engine":
        command = engine_command(build_tiny_model(tmp_path).dir, *args)
    assert_one_clear_line(run(command, env), "invalid settings", *expected)


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port on loopback that another process (here: this one) listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_busy_metrics_port_is_found_before_listening(tmp_path, held_port, workers):
    model = build_tiny_model(tmp_path)
    command = engine_command(
        model.dir, "--bind-host", "127.0.0.1", "--port", "0", "--metrics-port", str(held_port)
    )
    result = run([*command, "--workers", workers])
    assert_one_clear_line(
        result, f"cannot serve metrics on 127.0.0.1:{held_port}", "ENGINE_METRICS_PORT"
    )
    assert "listening on" not in result.stdout + result.stderr


def test_busy_grpc_port_is_found_before_listening(tmp_path, held_port):
    model = build_tiny_model(tmp_path)
    command = engine_command(
        model.dir, "--bind-host", "127.0.0.1", "--port", str(held_port), "--metrics-port", "0"
    )
    result = run([*command, "--workers", "2"])
    assert_one_clear_line(result, f"port {held_port} is already in use", "ENGINE_PORT")
    assert "listening on" not in result.stdout + result.stderr
