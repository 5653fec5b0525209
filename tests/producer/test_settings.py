from pydantic_settings import CliApp

from datasentinel.producer.cli import main
from datasentinel.producer.settings import ProducerSettings, Show


def parse(argv: list[str]) -> ProducerSettings:
    return CliApp.run(ProducerSettings, cli_args=argv)


def test_engine_address_is_read_from_engine_host_and_port_env(monkeypatch):
    monkeypatch.setenv("ENGINE_HOST", "engine.internal")
    monkeypatch.setenv("ENGINE_PORT", "9123")
    settings = parse([])
    assert (settings.engine_host, settings.engine_port) == ("engine.internal", 9123)


def test_engine_address_flags_override_env(monkeypatch):
    monkeypatch.setenv("ENGINE_HOST", "engine.internal")
    monkeypatch.setenv("ENGINE_PORT", "9123")
    settings = parse(["--engine-host", "10.0.0.7", "--engine-port", "9500"])
    assert settings.target == "10.0.0.7:9500"


def test_other_settings_use_the_producer_prefix(monkeypatch):
    monkeypatch.setenv("PRODUCER_BATCH_SIZE", "128")
    monkeypatch.setenv("PRODUCER_SHOW", "all")
    settings = parse(["--max-in-flight", "3"])
    assert (settings.batch_size, settings.show, settings.max_in_flight) == (128, Show.all, 3)


def test_defaults_stream_unseen_synthetic_rows():
    settings = parse([])
    assert settings.csv is None and settings.seed != 0 and settings.target == "localhost:9000"


def test_out_of_range_value_exits_2_with_one_line(caplog):
    assert main(["--batch-size", "0"]) == 2
    assert "--batch-size / PRODUCER_BATCH_SIZE" in caplog.text


def test_label_column_without_csv_exits_2(caplog):
    assert main(["--label-column", "label"]) == 2
    assert "--label-column needs --csv" in caplog.text


def test_unknown_flag_exits_2(caplog):
    assert main(["--no-such-flag"]) == 2
    assert "unrecognized arguments: --no-such-flag" in caplog.text


def test_recovery_bounds_come_from_flags_or_env_and_must_be_positive(monkeypatch, caplog):
    monkeypatch.setenv("PRODUCER_MAX_RETRY_SECONDS", "12.5")
    settings = parse(["--answer-timeout", "4"])
    assert (settings.max_retry_seconds, settings.answer_timeout) == (12.5, 4)
    monkeypatch.delenv("PRODUCER_MAX_RETRY_SECONDS")
    defaults = parse([])
    assert (defaults.max_retry_seconds, defaults.answer_timeout) == (60, 30)
    assert main(["--answer-timeout", "0"]) == 2
    assert "--answer-timeout / PRODUCER_ANSWER_TIMEOUT" in caplog.text


def test_threshold_and_top_features_from_flags_or_env(monkeypatch, caplog):
    monkeypatch.setenv("PRODUCER_TOP_FEATURES", "5")
    settings = parse(["--threshold", "2.5"])
    assert (settings.threshold, settings.top_features) == (2.5, 5)
    monkeypatch.delenv("PRODUCER_TOP_FEATURES")
    assert (parse([]).threshold, parse([]).top_features) == (None, 3)
    assert main(["--threshold", "-1"]) == 2
    assert "--threshold / PRODUCER_THRESHOLD" in caplog.text
