"""The bridge's settings: flags and variables, the topics' sanity, what reaches librdkafka."""

from __future__ import annotations

import pytest

from datasentinel.producer.kafka.clients import _options as options_for
from datasentinel.producer.kafka.clients import common_config, make_producer
from datasentinel.producer.kafka.settings import BridgeSettings
from datasentinel.settings_loader import UsageError, load_settings


def test_flags_and_variables(monkeypatch):
    monkeypatch.setenv("BRIDGE_KAFKA_TOPIC", "a,^b-.*")
    monkeypatch.setenv("ENGINE_PORT", "9100")
    settings = load_settings(BridgeSettings, ["--kafka-bootstrap", "k1:9092,k2:9092"])
    assert settings.kafka_topic == ["a", "^b-.*"]
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.target == "localhost:9100"


def test_output_topics_must_differ_from_the_input():
    with pytest.raises(UsageError, match="different topics"):
        load_settings(BridgeSettings, ["--kafka-topic", "x", "--kafka-output-topic", "x"])


def test_security_and_options_reach_the_clients(tmp_path):
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    settings = BridgeSettings(
        kafka_security_protocol="sasl_ssl",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="bridge",
        kafka_sasl_password_file=password,
        kafka_option=["consumer.session.timeout.ms=6000", "client.id=b1"],
    )
    config = common_config(settings)
    assert config["sasl.password"] == "s3cret" and config["security.protocol"] == "sasl_ssl"
    assert options_for(settings, "consumer") == {"session.timeout.ms": "6000", "client.id": "b1"}
    assert options_for(settings, "producer") == {"client.id": "b1"}


def test_an_option_must_be_key_value():
    with pytest.raises(UsageError, match="KEY=VALUE"):
        load_settings(BridgeSettings, ["--kafka-option", "nonsense"])


def test_transactional_producer_gets_a_stable_id():
    producer = make_producer(BridgeSettings(transactional=True, kafka_transactional_id="b-0"))
    assert producer is not None  # librdkafka accepted the configuration
