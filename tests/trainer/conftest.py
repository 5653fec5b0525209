"""Shared fixtures: quick settings, and one tiny end-to-end run that several tests inspect."""

from collections.abc import Callable
from pathlib import Path

import pytest

from datasentinel.trainer.pipeline import TrainingResult, train_and_export
from datasentinel.trainer.settings import TrainerSettings

# Small and quiet: every run in this suite should take a second or two.
QUICK = {"synthetic_rows": 1500, "epochs": 10, "patience": 5, "progress": False, "plots": False}


@pytest.fixture
def quick_settings(tmp_path: Path) -> Callable[..., TrainerSettings]:
    """Settings for a fast run into ``tmp_path/models``; keyword arguments override."""

    def make(**overrides: object) -> TrainerSettings:
        return TrainerSettings(**{"models_dir": tmp_path / "models", **QUICK, **overrides})

    return make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """1500 synthetic rows, 10 epochs, plots on: model.onnx, config.json and both PNGs."""
    models_dir = tmp_path_factory.mktemp("tiny") / "models"
    return train_and_export(TrainerSettings(models_dir=models_dir, **{**QUICK, "plots": True}))
