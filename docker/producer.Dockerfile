# DataSentinel producer: streams vectors to the engine and reports the results; also the Kafka
# bridge (datasentinel-bridge, `python -m datasentinel.producer.kafka`). No torch.
# Build from the repository root: docker build -f docker/producer.Dockerfile .
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the kafka extra (the producer's, plus confluent-kafka with librdkafka
# in its wheel, and prometheus-client): editing the code below reuses this layer.
COPY pyproject.toml ./
COPY docker/requirements.py docker/
RUN python docker/requirements.py kafka > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY proto proto
COPY engine engine
COPY producer producer
COPY trainer trainer
# pip and setuptools are for building only: about 26 MB the runtime image does without.
RUN pip install --no-deps . \
 && pip uninstall --yes pip setuptools

FROM python:3.11-slim
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent datasentinel
COPY --from=builder /opt/venv /opt/venv
# HOME: the user has none, and ONNX Runtime and matplotlib want somewhere to write.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp ENGINE_HOST=engine ENGINE_PORT=9000
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "datasentinel.producer"]
