# DataSentinel engine: gRPC anomaly scoring with ONNX Runtime on the CPU. No torch.
# Build from the repository root: docker build -f docker/engine.Dockerfile .
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, from the engine extra: editing the code below reuses this layer.
COPY pyproject.toml ./
COPY docker/requirements.py docker/
RUN python docker/requirements.py engine > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
# The source is small: all packages are copied because pyproject lists them all.
COPY README.md ./
COPY proto proto
COPY engine engine
COPY producer producer
COPY trainer trainer
# pip and setuptools are for building only: about 26 MB the runtime image does without.
RUN pip install --no-deps . \
 && pip uninstall --yes pip setuptools

FROM python:3.11-slim
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent datasentinel \
 && mkdir /models && chown datasentinel:datasentinel /models
COPY --from=builder /opt/venv /opt/venv
# HOME: the user has none, and ONNX Runtime and matplotlib want somewhere to write.
# The engine listens on loopback by default; in a container that would be unreachable, and the
# container's network is the boundary: listen on every interface of it (compose publishes the
# ports on the host's loopback only, and runs with TLS and a token: see docker/compose.yaml).
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp MODELS_DIR=/models ENGINE_PORT=9000 \
    ENGINE_BIND_HOST=0.0.0.0 ENGINE_METRICS_BIND_HOST=0.0.0.0
USER 10001:10001
WORKDIR /tmp
EXPOSE 9000 9464
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=12 \
  CMD ["python", "-m", "datasentinel.engine.healthcheck"]
ENTRYPOINT ["python", "-m", "datasentinel.engine"]
