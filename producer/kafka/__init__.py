"""The Kafka room: a bridge from input topics through the engine to a verdict topic.

settings.py holds its one settings class; codec.py turns a Kafka message into a vector and its
keys (or a reason to dead-letter it) and a verdict into a message; offsets.py tracks which
offsets may be committed (those whose verdicts the broker acknowledged, contiguous per
partition); scorer.py sends batches to the engine and sorts its answers into done, retry later
or dead letter; clients.py builds the confluent-kafka clients; bridge.py is the loop that ties
them together, with the rebalance callbacks and the drain on SIGTERM; metrics.py the Prometheus
side. ``datasentinel-bridge --help`` for the command; see producer/README.md, "Kafka".
"""
