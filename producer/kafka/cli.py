"""``datasentinel-bridge``: settings in, the bridge running until SIGTERM, an exit code out.

0: stopped by SIGTERM/SIGINT after draining; 1: stopped on its own (the engine refuses the
bridge, a fatal Kafka error, an aborted transaction: a restart reads again from the committed
offsets); 2: bad settings; 3: the engine was not SERVING within --ready-timeout.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys

from datasentinel.producer.channel.channel import open_channel
from datasentinel.producer.channel.readiness import fetch_model_info, wait_until_serving
from datasentinel.producer.channel.security import ClientSecurity
from datasentinel.producer.errors import EXIT_FAILED, EXIT_OK, ProducerError
from datasentinel.producer.kafka.bridge import Bridge, BridgeError
from datasentinel.producer.kafka.clients import make_consumer, make_producer
from datasentinel.producer.kafka.codec import Decoder
from datasentinel.producer.kafka.metrics import BridgeMetrics, serve
from datasentinel.producer.kafka.scorer import FatalEngineError, Scorer
from datasentinel.producer.kafka.settings import BridgeSettings
from datasentinel.producer.stream.messages import RequestOptions
from datasentinel.settings_loader import run_command

log = logging.getLogger("datasentinel.bridge")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return run_command(BridgeSettings, argv, log, _serve)


def _serve(settings: BridgeSettings) -> int:
    try:
        return run(settings)
    except ProducerError as e:
        log.error("%s", e)
        return e.exit_code


def run(settings: BridgeSettings) -> int:
    """Connects to the engine, then bridges until SIGTERM/SIGINT; returns the exit code."""
    target = settings.target
    security = ClientSecurity.from_settings(settings)
    with open_channel(target, security, balanced=settings.engine_target is not None) as channel:
        wait_until_serving(channel, target, settings.ready_timeout)
        info = fetch_model_info(channel, target)
        batch_size = settings.batch_size
        if info.max_batch_rows and batch_size > info.max_batch_rows:
            batch_size = info.max_batch_rows
        top = min(settings.top_features, info.input_dim or settings.top_features)
        metrics = BridgeMetrics()
        if settings.metrics_port is not None:
            serve(metrics, settings.metrics_bind_host, settings.metrics_port)
        bridge = Bridge(
            settings,
            lambda **callbacks: make_consumer(settings, **callbacks),
            make_producer(settings),
            Decoder(list(info.feature_names), info.accepts_missing, settings.max_message_bytes),
            Scorer(
                channel,
                RequestOptions(settings.threshold, top),
                settings.max_in_flight,
                settings.answer_timeout,
            ),
            metrics,
            batch_size,
        )
        _stop_on_signals(bridge)
        log.info(
            "bridging to engine %s (model %s, %d features), %d events per request, to %s",
            target,
            info.model_version,
            info.input_dim,
            batch_size,
            settings.kafka_output_topic,
        )
        try:
            bridge.run()
        except (BridgeError, FatalEngineError) as e:
            log.error("%s", e)
            return EXIT_FAILED
    if bridge.failure:
        log.error("stopped: %s", bridge.failure)
        return EXIT_FAILED
    log.info("stopped after draining")
    return EXIT_OK


def _stop_on_signals(bridge: Bridge) -> None:
    """SIGTERM and SIGINT end the loop (a drain follows); a second one exits at once. SIGUSR1
    prints every thread's stack to stderr (a bridge that seems stuck)."""
    faulthandler.register(signal.SIGUSR1)

    def handle(signum, frame) -> None:
        if bridge.stop.is_set():
            raise SystemExit(EXIT_FAILED)
        log.info("%s: draining, then exiting", signal.Signals(signum).name)
        bridge.stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
