"""Hot reload swaps in good artifacts and keeps serving the old model when new ones are bad."""

import asyncio
import json
import shutil

import numpy as np

from datasentinel.engine.model.reload import ModelReloader
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.scoring.core import ScoreBatch, ScoringCore
from datasentinel.model_config import CONFIG_FILENAME, MODEL_FILENAME, sha256_file
from tests.conftest import build_tiny_model, kubernetes_volume
from tests.engine.conftest import wait_outcomes

CPU = RuntimeOptions(providers=("CPUExecutionProvider",))


def reloader(core, models_dir, outcomes, poll=0.0):
    return ModelReloader(core, models_dir, CPU, poll, on_outcome=outcomes.append)


def one_row(dim):
    return ScoreBatch([0], np.ones((1, dim), np.float32))


async def test_good_artifacts_are_swapped_in(core, tiny_model):
    outcomes = []
    build_tiny_model(tiny_model.dir, version="tiny-2", seed=5)
    assert await reloader(core, tiny_model.dir, outcomes).reload()
    assert outcomes == [True]
    assert (await core.score(one_row(tiny_model.dim))).model_version == "tiny-2"


async def test_corrupt_model_keeps_the_old_one(core, tiny_model):
    outcomes = []
    (tiny_model.dir / MODEL_FILENAME).write_bytes(b"garbage")
    config = json.loads((tiny_model.dir / CONFIG_FILENAME).read_text())
    config["model_sha256"] = sha256_file(tiny_model.dir / MODEL_FILENAME)
    (tiny_model.dir / CONFIG_FILENAME).write_text(json.dumps(config))
    assert not await reloader(core, tiny_model.dir, outcomes).reload()
    assert outcomes == [False]
    assert (await core.score(one_row(tiny_model.dim))).model_version == tiny_model.version


async def test_dimension_change_keeps_the_old_one(core, tiny_model, caplog):
    outcomes = []
    build_tiny_model(tiny_model.dir, dim=tiny_model.dim + 2, version="wider")
    assert not await reloader(core, tiny_model.dir, outcomes).reload()
    assert "needs a restart" in caplog.text
    assert core.model.config.model_version == tiny_model.version


async def test_watcher_reloads_on_change_and_retries_a_bad_file_only_when_it_changes(
    core, tiny_model
):
    outcomes = []
    watcher = asyncio.create_task(reloader(core, tiny_model.dir, outcomes, poll=0.02).run())
    try:
        await asyncio.sleep(0.1)
        assert outcomes == []  # nothing changed yet
        (tiny_model.dir / CONFIG_FILENAME).write_text("{broken")
        await asyncio.sleep(0.2)
        assert outcomes == [False]
        build_tiny_model(tiny_model.dir, version="tiny-3", seed=6)
        for _ in range(50):
            if outcomes[-1]:
                break
            await asyncio.sleep(0.02)
        assert outcomes == [False, True]
        assert core.model.config.model_version == "tiny-3"
    finally:
        watcher.cancel()


async def test_request_forces_a_reload_without_a_change(core, tiny_model):
    outcomes = []
    reload = reloader(core, tiny_model.dir, outcomes, poll=0)
    watcher = asyncio.create_task(reload.run())
    try:
        reload.request()
        await wait_outcomes(outcomes, 1, polls=100)
        assert outcomes == [True]
    finally:
        watcher.cancel()


async def test_copy_of_config_before_model_is_retried_when_the_model_lands(
    core, tiny_model, tmp_path
):
    """``cp new/* models/`` writes config.json first: that reload fails (the model on disk is
    the old one); it must be tried again when model.onnx changes, with no SIGHUP."""
    new = build_tiny_model(tmp_path / "new", version="tiny-copied", seed=8)
    outcomes = []
    watcher = asyncio.create_task(reloader(core, tiny_model.dir, outcomes, poll=0.02).run())
    try:
        await asyncio.sleep(0.1)
        shutil.copy(new.dir / CONFIG_FILENAME, tiny_model.dir / CONFIG_FILENAME)
        await wait_outcomes(outcomes, 1)
        assert outcomes == [False]
        await asyncio.sleep(0.2)
        assert outcomes == [False]  # not retried in a loop while nothing changes
        shutil.copy(new.dir / MODEL_FILENAME, tiny_model.dir / MODEL_FILENAME)
        await wait_outcomes(outcomes, 2)
        assert outcomes == [False, True]
        assert core.model.config.model_version == "tiny-copied"
    finally:
        watcher.cancel()


async def test_model_file_outside_the_models_folder_is_refused(core, tiny_model, caplog):
    """A config naming ``../model.onnx`` is refused even when that file exists and matches."""
    outside = tiny_model.dir.parent / "model.onnx"
    shutil.copy(tiny_model.dir / MODEL_FILENAME, outside)
    config = json.loads((tiny_model.dir / CONFIG_FILENAME).read_text())
    config.update(model_file="../model.onnx", model_version="escaped")
    (tiny_model.dir / CONFIG_FILENAME).write_text(json.dumps(config))
    outcomes = []
    assert not await reloader(core, tiny_model.dir, outcomes).reload()
    assert "plain file name inside the models folder" in caplog.text
    assert core.model.config.model_version == tiny_model.version


async def test_model_linked_to_another_folder_is_refused_and_the_old_one_kept(
    core, tiny_model, tmp_path, caplog
):
    elsewhere = build_tiny_model(tmp_path / "elsewhere", version="linked", seed=7)
    (tiny_model.dir / MODEL_FILENAME).unlink()
    (tiny_model.dir / MODEL_FILENAME).symlink_to(elsewhere.dir / MODEL_FILENAME)
    shutil.copy(elsewhere.dir / CONFIG_FILENAME, tiny_model.dir / CONFIG_FILENAME)
    outcomes = []
    assert not await reloader(core, tiny_model.dir, outcomes).reload()
    assert "outside the models folder" in caplog.text
    assert core.model.config.model_version == tiny_model.version


async def test_kubernetes_volume_update_is_swapped_in(tiny_model, tmp_path):
    """A ConfigMap/Secret update: a new timestamped folder, then ``..data`` repointed."""
    mounted = tmp_path / "mounted"
    kubernetes_volume(mounted, tiny_model.dir, "2026_01_01")
    core = ScoringCore(load_model(mounted, CPU))
    await core.start()
    try:
        new = build_tiny_model(tmp_path / "new", version="tiny-k8s", seed=8)
        kubernetes_volume(mounted, new.dir, "2026_01_02")
        outcomes = []
        assert await reloader(core, mounted, outcomes).reload()
        assert core.model.config.model_version == "tiny-k8s"
    finally:
        await core.close()
