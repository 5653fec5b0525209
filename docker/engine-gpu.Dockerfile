# DataSentinel engine for NVIDIA GPUs: ONNX Runtime with the TensorRT and CUDA execution providers.
# Built on demand only (not in CI; needs a GPU host with the NVIDIA container toolkit to run):
#   docker compose -f docker/compose.yaml --profile gpu build engine-gpu
# CUDA, cuDNN and TensorRT come from NVIDIA's pip wheels (onnxruntime-gpu's "cuda,cudnn" extras
# and tensorrt-cu12-libs), so no CUDA base image is needed; the engine logs the provider in use.
FROM python:3.11-slim AS builder
ARG ORT_GPU_VERSION=1.23.2
ARG TENSORRT_VERSION=10.13.3.9
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY docker/requirements.py docker/
RUN python docker/requirements.py engine --drop onnxruntime > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
      "onnxruntime-gpu[cuda,cudnn]==${ORT_GPU_VERSION}" "tensorrt-cu12-libs==${TENSORRT_VERSION}"
COPY README.md ./
COPY proto proto
COPY engine engine
COPY producer producer
COPY trainer trainer
RUN pip install --no-deps .

FROM python:3.11-slim
RUN useradd --system --user-group --uid 10001 --no-create-home --home-dir /nonexistent datasentinel \
 && mkdir /models /trt_cache && chown datasentinel:datasentinel /models /trt_cache
COPY --from=builder /opt/venv /opt/venv
# TensorRT's libraries live in its wheel; ONNX Runtime finds CUDA/cuDNN wheels by itself.
# HOME: the user has none, and ONNX Runtime and matplotlib want somewhere to write.
# BIND_HOSTs: loopback (the engine's default) is unreachable in a container; see engine.Dockerfile.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp MODELS_DIR=/models ENGINE_PORT=9000 \
    ENGINE_TRT_ENGINE_CACHE_DIR=/trt_cache ENGINE_BIND_HOST=0.0.0.0 ENGINE_METRICS_BIND_HOST=0.0.0.0 \
    LD_LIBRARY_PATH=/opt/venv/lib/python3.11/site-packages/tensorrt_libs
USER 10001:10001
WORKDIR /tmp
EXPOSE 9000 9464
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=12 \
  CMD ["python", "-m", "datasentinel.engine.healthcheck"]
ENTRYPOINT ["python", "-m", "datasentinel.engine"]
