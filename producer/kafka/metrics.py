"""The bridge's Prometheus metrics: events in, verdicts and dead letters out, consumer lag per
partition, end-to-end latency (event timestamp to verdict acknowledged), pending events,
whether the input is paused, engine retries. One registry per bridge; served on a small
threaded wsgiref server whose connections time out (as the engine's endpoint, for the same
reason: prometheus_client's own server keeps a thread per idle connection forever)."""

from __future__ import annotations

import json
import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

log = logging.getLogger(__name__)

# Latency buckets, seconds: from a few milliseconds (batched, engine local) to minutes (a
# backlog after an outage).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        prefix = "datasentinel_bridge_"
        self.events_in = Counter(prefix + "events_in", "Input messages read.", registry=r)
        self.verdicts = Counter(prefix + "verdicts", "Verdicts acknowledged.", registry=r)
        self.dead_letters = Counter(
            prefix + "dead_letters", "Dead letters acknowledged.", registry=r
        )
        self.engine_retries = Counter(
            prefix + "engine_retries", "Engine requests sent again.", ["code"], registry=r
        )
        self.commits = Counter(prefix + "commits", "Offset commits.", registry=r)
        self.lag = Gauge(
            prefix + "consumer_lag",
            "Messages behind the end of the partition (librdkafka statistics).",
            ["topic", "partition"],
            registry=r,
        )
        self.pending = Gauge(prefix + "pending_events", "Read, not yet committed.", registry=r)
        self.paused = Gauge(prefix + "paused", "1 while the input is paused.", registry=r)
        self.latency = Histogram(
            prefix + "latency_seconds",
            "Event timestamp to verdict acknowledged by the broker.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def on_stats(self, stats_json: str) -> None:
        """librdkafka's statistics callback: the consumer lag of each assigned partition."""
        stats = json.loads(stats_json)
        for topic, t in stats.get("topics", {}).items():
            for partition, p in t.get("partitions", {}).items():
                if partition == "-1" or p.get("consumer_lag", -1) < 0:
                    continue
                self.lag.labels(topic, partition).set(p["consumer_lag"])


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    timeout = 10.0

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged."""


def serve(metrics: BridgeMetrics, host: str, port: int) -> WSGIServer:
    """Serves /metrics on ``host:port`` (0: a free port) in a daemon thread; logs the address."""
    server = make_server(
        host, port, make_wsgi_app(metrics.registry), _Server, handler_class=_Handler
    )
    threading.Thread(target=server.serve_forever, daemon=True, name="bridge-metrics").start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_port)
    return server
