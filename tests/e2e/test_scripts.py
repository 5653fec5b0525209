"""The scripts as a user runs them, from a folder of the user's own: real processes, free ports.

runLocalStack.sh must stream only to the engine it started (a free port by default, read back from
the engine's --port-file) and stop before streaming when that engine cannot start; every script
reads and writes relative paths from the caller's folder, not the repository."""

import os
import re
import subprocess
import time

import numpy as np

from tests.conftest import REPO, build_tiny_model

SCRIPTS = REPO / "scripts"
# The old script waited 30 s for SERVING before giving up; an engine that cannot bind dies within
# a few seconds of starting, and the script must notice that, on a loaded machine too.
FAIL_FAST_SECONDS = 20


def run_script(name, *args, cwd, env=None, timeout=180):
    # The user's own settings must not leak in: only what the test passes.
    ours = ("ENGINE_", "PRODUCER_", "MODELS_DIR")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    environment.update(env or {})
    return subprocess.run(
        [str(SCRIPTS / name), *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_stack_streams_to_its_own_engine_on_a_free_port(tmp_path):
    build_tiny_model(tmp_path / "m", dim=8)  # the producer's built-in data has 8 features
    result = run_script(
        "runLocalStack.sh",
        *("--count", 200, "--show", "none", "--output", "R.csv"),
        cwd=tmp_path,
        env={"MODELS_DIR": "m"},  # relative: from the caller's folder
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ports = set(re.findall(r"listening on 127\.0\.0\.1:(\d+)", result.stderr))
    assert len(ports) == 1, result.stderr
    port = ports.pop()
    assert port != "9000"
    assert f"engine       127.0.0.1:{port}," in result.stdout
    assert len((tmp_path / "R.csv").read_text().splitlines()) == 201
    assert not (REPO / "R.csv").exists()


def test_stack_stops_before_streaming_when_its_engine_cannot_start(start_engine, tmp_path):
    # Another engine (another model) already serves the port the user asks for.
    foreign = start_engine(build_tiny_model(tmp_path / "foreign", dim=8, version="foreign").dir)
    build_tiny_model(tmp_path / "own", dim=8, version="own")
    started = time.monotonic()
    result = run_script(
        "runLocalStack.sh",
        *("--count", 200, "--show", "none"),
        cwd=tmp_path,
        env={"MODELS_DIR": "own", "ENGINE_PORT": str(foreign.port)},
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "summary" not in result.stdout and "foreign" not in result.stdout
    assert "already in use" in result.stderr
    assert "the engine did not start" in result.stderr and "nothing was streamed" in result.stderr
    assert elapsed < FAIL_FAST_SECONDS, f"took {elapsed:.1f} s"


def test_trainer_script_reads_and_writes_relative_to_the_callers_folder(tmp_path):
    rng = np.random.default_rng(0)
    rows = "\n".join(",".join(f"{v:.4f}" for v in row) for row in rng.normal(size=(200, 4)))
    (tmp_path / "strcol.csv").write_text("a,b,c,d\n" + rows + "\n")
    result = run_script(
        "runTrainer.sh",
        *("--data", "strcol.csv", "--models-dir", "D2"),
        *("--epochs", 1, "--ensemble-size", 1, "--no-plots"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "D2" / "model.onnx").is_file()
    assert (tmp_path / "D2" / "config.json").is_file()
    assert not (REPO / "D2").exists()
