"""Replacing the artifacts under a steady stream: zero failed requests, results switch to the new
model version, and a corrupt replacement keeps the old model serving."""

import json
import shutil
import signal
import subprocess
import threading
import time

import numpy as np

from datasentinel.model_config import CONFIG_FILENAME, MODEL_FILENAME, sha256_file
from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc
from tests.conftest import build_tiny_model, engine_command, kubernetes_volume


def steady_stream(engine, dim, stop: threading.Event, answers: list):
    """Streams 8-row batches until ``stop``; appends (ok, version, ids) per answer."""
    x = np.random.default_rng(1).normal(size=(8, dim)).astype(np.float32)

    def requests():
        i = 0
        while not stop.is_set():
            ids = list(range(8 * i, 8 * i + 8))
            yield pb.ScoreRequest(ids=ids, raw=pb.RawVectors(data=x.tobytes(), rows=8, cols=dim))
            i += 1
            time.sleep(0.002)

    with engine.channel() as channel:
        for reply in pb_grpc.AnomalyScorerStub(channel).ScoreStream(requests(), timeout=120):
            ok = reply.WhichOneof("outcome") == "result"
            answers.append((ok, reply.result.model_version, list(reply.result.ids)))


def wait_for(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def score_version(engine, dim):
    with engine.channel() as channel:
        reply = pb_grpc.AnomalyScorerStub(channel).Score(
            pb.ScoreRequest(ids=[0], raw=pb.RawVectors(data=bytes(4 * dim), rows=1, cols=dim))
        )
    return reply.model_version


def test_swap_under_a_steady_stream_loses_nothing(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--reload-poll-seconds", "0.1")
    stop, answers = threading.Event(), []
    client = threading.Thread(target=steady_stream, args=(engine, tiny_model.dim, stop, answers))
    client.start()
    try:
        assert wait_for(lambda: len(answers) > 50)
        build_tiny_model(tiny_model.dir, version="tiny-2", seed=9)
        assert wait_for(lambda: answers[-1][1] == "tiny-2"), engine.log()
        count = len(answers)
        assert wait_for(lambda: len(answers) > count + 50)
    finally:
        stop.set()
        client.join(60)
    assert all(ok for ok, _, _ in answers)
    versions = [version for _, version, _ in answers]
    switch = versions.index("tiny-2")
    assert set(versions[:switch]) == {"tiny-1"} and set(versions[switch:]) == {"tiny-2"}
    ids = [i for _, _, batch in answers for i in batch]
    assert ids == list(range(len(ids)))
    assert "model reloaded: tiny-1 -> tiny-2" in engine.log()


def test_corrupt_replacement_keeps_the_old_model_serving(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--reload-poll-seconds", "0.1")
    (tiny_model.dir / MODEL_FILENAME).write_bytes(b"not a model")
    config = json.loads((tiny_model.dir / CONFIG_FILENAME).read_text())
    config.update(model_sha256=sha256_file(tiny_model.dir / MODEL_FILENAME), model_version="bad")
    (tiny_model.dir / CONFIG_FILENAME).write_text(json.dumps(config))
    assert wait_for(lambda: "model reload failed, still serving tiny-1" in engine.log())
    assert score_version(engine, tiny_model.dim) == "tiny-1"


def corrupt(models_dir, version: str) -> None:
    """A model file that is not ONNX, with a config.json that matches its hash."""
    (models_dir / MODEL_FILENAME).write_bytes(b"not a model")
    config = json.loads((models_dir / CONFIG_FILENAME).read_text())
    config.update(model_sha256=sha256_file(models_dir / MODEL_FILENAME), model_version=version)
    (models_dir / CONFIG_FILENAME).write_text(json.dumps(config))


def test_good_corrupt_and_incompatible_swaps_under_a_stream_fail_nothing(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--reload-poll-seconds", "0.1")
    stop, answers = threading.Event(), []
    client = threading.Thread(target=steady_stream, args=(engine, tiny_model.dim, stop, answers))
    client.start()
    try:
        assert wait_for(lambda: len(answers) > 30)
        build_tiny_model(tiny_model.dir, version="tiny-good", seed=5)
        assert wait_for(lambda: answers[-1][1] == "tiny-good"), engine.log()
        corrupt(tiny_model.dir, "tiny-corrupt")
        assert wait_for(lambda: "still serving tiny-good" in engine.log()), engine.log()
        build_tiny_model(tiny_model.dir, dim=tiny_model.dim + 2, version="tiny-wide", seed=6)
        assert wait_for(lambda: engine.log().count("still serving tiny-good") >= 2), engine.log()
        count = len(answers)
        assert wait_for(lambda: len(answers) > count + 30)
    finally:
        stop.set()
        client.join(60)
    assert all(ok for ok, _, _ in answers), "a request failed during a reload"
    assert {version for _, version, _ in answers} == {"tiny-1", "tiny-good"}
    ids = [i for _, _, batch in answers for i in batch]
    assert ids == list(range(len(ids)))  # every id answered once, in order


def test_sighup_reloads_when_polling_is_off(tiny_model, start_engine):
    engine = start_engine(tiny_model.dir, "--reload-poll-seconds", "0")
    build_tiny_model(tiny_model.dir, version="tiny-hup", seed=4)
    time.sleep(0.3)
    assert score_version(engine, tiny_model.dim) == "tiny-1"  # not polling
    engine.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: score_version(engine, tiny_model.dim) == "tiny-hup")


def test_cp_config_before_model_reloads_when_the_model_lands(tiny_model, start_engine, tmp_path):
    """``cp new/* models/`` order: config.json first (rejected: the old model.onnx does not match
    it), then model.onnx: the engine must pick the pair up without a SIGHUP."""
    new = build_tiny_model(tmp_path / "new", version="tiny-cp", seed=11)
    engine = start_engine(tiny_model.dir, "--reload-poll-seconds", "0.1")
    shutil.copy(new.dir / CONFIG_FILENAME, tiny_model.dir / CONFIG_FILENAME)
    assert wait_for(lambda: "model reload failed, still serving tiny-1" in engine.log())
    shutil.copy(new.dir / MODEL_FILENAME, tiny_model.dir / MODEL_FILENAME)
    assert wait_for(lambda: score_version(engine, tiny_model.dim) == "tiny-cp"), engine.log()
    assert "model reloaded: tiny-1 -> tiny-cp" in engine.log()


def test_engine_refuses_to_start_on_a_model_file_outside_the_models_folder(tiny_model):
    config = json.loads((tiny_model.dir / CONFIG_FILENAME).read_text())
    config["model_file"] = "../model.onnx"
    shutil.copy(tiny_model.dir / MODEL_FILENAME, tiny_model.dir.parent / MODEL_FILENAME)
    (tiny_model.dir / CONFIG_FILENAME).write_text(json.dumps(config))
    result = subprocess.run(
        engine_command(tiny_model.dir, "--bind-host", "127.0.0.1", "--port", "0")
        + ["--metrics-port", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "plain file name inside the models folder" in errors[0]


def test_engine_refuses_to_start_on_a_model_file_linked_outside_the_models_folder(
    tiny_model, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tiny_model.dir / MODEL_FILENAME).rename(elsewhere / MODEL_FILENAME)
    (tiny_model.dir / MODEL_FILENAME).symlink_to(elsewhere / MODEL_FILENAME)
    result = subprocess.run(
        engine_command(tiny_model.dir, "--bind-host", "127.0.0.1", "--port", "0")
        + ["--metrics-port", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "outside the models folder" in errors[0], result.stderr
    assert str(elsewhere / MODEL_FILENAME) in errors[0]


def test_reload_to_a_model_linked_outside_keeps_the_old_model(tiny_model, start_engine, tmp_path):
    engine = start_engine(tiny_model.dir, "--reload-poll-seconds", "0.1")
    elsewhere = build_tiny_model(tmp_path / "elsewhere", version="tiny-linked", seed=7)
    (tiny_model.dir / "link").symlink_to(elsewhere.dir / MODEL_FILENAME)
    (tiny_model.dir / "link").rename(tiny_model.dir / MODEL_FILENAME)
    shutil.copy(elsewhere.dir / CONFIG_FILENAME, tiny_model.dir / CONFIG_FILENAME)
    failed = "model reload failed, still serving tiny-1: "
    assert wait_for(lambda: failed in engine.log()), engine.log()
    assert "outside the models folder" in engine.log().split(failed, 1)[1].splitlines()[0]
    assert score_version(engine, tiny_model.dim) == "tiny-1"


def test_kubernetes_volume_serves_and_reloads_through_its_links(tiny_model, start_engine, tmp_path):
    """models/model.onnx -> ..data/model.onnx, ..data -> ..<timestamp>: all inside the folder."""
    mounted = tmp_path / "mounted"
    kubernetes_volume(mounted, tiny_model.dir, "2026_01_01_00_00_00.1")
    engine = start_engine(mounted, "--reload-poll-seconds", "0.1")
    assert score_version(engine, tiny_model.dim) == "tiny-1"
    update = build_tiny_model(tmp_path / "update", version="tiny-k8s", seed=8)
    kubernetes_volume(mounted, update.dir, "2026_01_02_00_00_00.2")
    assert wait_for(lambda: score_version(engine, tiny_model.dim) == "tiny-k8s"), engine.log()
    assert "model reload failed" not in engine.log()
