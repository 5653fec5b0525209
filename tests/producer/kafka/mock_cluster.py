"""A librdkafka mock cluster kept alive in its own process, for tests: prints its bootstrap
addresses (one line), then serves until its standard input closes or SIGTERM.

    python -m tests.producer.kafka.mock_cluster [--brokers 3]

The mock cluster lives inside a client (confluent-kafka with ``test.mock.num.brokers``); other
clients, in other processes, reach its brokers at the addresses its metadata lists (each bound to
port 0 by librdkafka). Topics are created on first use with 4 partitions.
"""

from __future__ import annotations

import argparse
import signal
import sys

from confluent_kafka import Producer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--brokers", type=int, default=3)
    args = parser.parse_args()
    host = Producer({"test.mock.num.brokers": args.brokers, "log_level": 3})
    brokers = host.list_topics(timeout=10).brokers.values()
    print(",".join(f"{b.host}:{b.port}" for b in brokers), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdin.read()  # until the test closes our stdin (or dies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
