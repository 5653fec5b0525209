from pathlib import Path

from pydantic_settings import CliApp

from datasentinel.trainer.cli import main
from datasentinel.trainer.settings import TrainerSettings


def test_flags_parse_into_settings():
    argv = ["--models-dir", "out", "--no-plots", "--hidden-dims", "32,16", "--latent-dim", "3"]
    settings = CliApp.run(TrainerSettings, cli_args=argv)
    assert settings.models_dir == Path("out") and settings.plots is False
    assert settings.hidden_dims == [32, 16] and settings.latent_dim == 3


def test_models_dir_is_read_from_env(monkeypatch):
    monkeypatch.setenv("MODELS_DIR", "/srv/models")
    assert CliApp.run(TrainerSettings, cli_args=[]).models_dir == Path("/srv/models")


def test_out_of_range_setting_exits_2(caplog):
    assert main(["--threshold-quantile", "1.5"]) == 2
    assert "--threshold-quantile / TRAINER_THRESHOLD_QUANTILE" in caplog.text
