# DataSentinel trainer: fits the autoencoder and writes model.onnx + config.json to /models.
# Build from the repository root: docker build -f docker/trainer.Dockerfile .
# torch: a CPU build downloaded from PyTorch's CPU index by default; or the torch-*.whl found in
# TORCH_WHEELS (a folder inside the build context, default docker/wheels), with no torch download.
# The scripts (scripts/docker/lib.sh build_images) link a local wheel there for this build only.
FROM python:3.11-slim AS builder
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_WHEELS=docker/wheels
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY ${TORCH_WHEELS}/ /tmp/wheels/
# The "+cpu" local version keeps pip from taking PyPI's multi-GB CUDA build of the same release.
# A local wheel is installed whatever its version (its file pins it); its dependencies from PyPI.
# hadolint ignore=DL3013
RUN set -- /tmp/wheels/torch-*.whl; \
    if [ -f "$1" ]; then \
      pip install "$1"; \
    else \
      pip install --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple \
        "torch==${TORCH_VERSION}+cpu"; \
    fi \
 && rm -rf /tmp/wheels
# The other dependencies, from the trainer extra: editing the code below reuses this layer.
COPY pyproject.toml ./
COPY docker/requirements.py docker/
RUN python docker/requirements.py trainer > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY README.md ./
COPY proto proto
COPY engine engine
COPY producer producer
COPY trainer trainer
RUN pip install --no-deps .

FROM python:3.11-slim
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent datasentinel \
 && mkdir /models && chown datasentinel:datasentinel /models
COPY --from=builder /opt/venv /opt/venv
# HOME: the user has none, and ONNX Runtime and matplotlib want somewhere to write.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp MODELS_DIR=/models
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "datasentinel.trainer"]
