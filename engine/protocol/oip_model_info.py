"""What the Open Inference Protocol says about the model besides scoring it: Triton's model
configuration, repository index and statistics, and the feature names in its metadata. Built from
the loaded model, the engine's limits and its metrics; shared by the gRPC servicer and REST.

The configuration follows Triton's conventions so that tools built on it (perf_analyzer,
tritonclient) read it as they would a Triton model's: ``max_batch_size`` > 0 and dims without the
batch dimension; a per-row output (``score``) is ``dims [1]`` reshaped to ``[]``.
"""

from __future__ import annotations

import json

from datasentinel.engine.metrics.statistics import Statistics
from datasentinel.engine.model.session import LoadedModel
from datasentinel.engine.protocol import oip_converters as convert
from datasentinel.oip import grpc_predict_v2_pb2 as oip
from datasentinel.oip import model_config_pb2 as mc

BACKEND = "onnxruntime"
FEATURE_NAMES = "feature_names"
READY, UNAVAILABLE = "READY", "UNAVAILABLE"
_TYPES = {"FP32": mc.TYPE_FP32, "BOOL": mc.TYPE_BOOL, "BYTES": mc.TYPE_STRING}


def feature_names_json(model: LoadedModel) -> str:
    """The input's columns in order, as a JSON array: a parameter holds one string."""
    return json.dumps(list(model.config.feature_names))


def model_metadata(model: LoadedModel, served_name: str) -> oip.ModelMetadataResponse:
    """The protocol's metadata, with the feature names as the ``feature_names`` parameter."""
    response = convert.model_metadata(model, served_name)
    response.parameters[FEATURE_NAMES].string_param = feature_names_json(model)
    return response


def model_config(model: LoadedModel, served_name: str, max_batch_rows: int) -> mc.ModelConfig:
    metadata = convert.model_metadata(model, served_name)
    config = mc.ModelConfig(
        name=served_name,
        platform=convert.PLATFORM,
        backend=BACKEND,
        max_batch_size=max_batch_rows,
        input=[_input(t) for t in metadata.inputs],
        output=[_output(t) for t in metadata.outputs],
        instance_group=[mc.ModelInstanceGroup(name=served_name, count=1, kind=_kind(model))],
        dynamic_batching=mc.ModelDynamicBatching(),
    )
    parameters = {
        FEATURE_NAMES: feature_names_json(model),
        "threshold": repr(model.threshold),
        "model_version": model.model_version,
        "model_sha256": model.config.model_sha256,
        "execution_provider": model.provider,
    }
    for key, value in parameters.items():
        config.parameters[key].string_value = value
    return config


def _input(tensor) -> mc.ModelInput:
    return mc.ModelInput(
        name=tensor.name, data_type=_TYPES[tensor.datatype], dims=list(tensor.shape[1:])
    )


def _output(tensor) -> mc.ModelOutput:
    dims = list(tensor.shape[1:])
    if dims:
        return mc.ModelOutput(name=tensor.name, data_type=_TYPES[tensor.datatype], dims=dims)
    return mc.ModelOutput(
        name=tensor.name,
        data_type=_TYPES[tensor.datatype],
        dims=[1],
        reshape=mc.ModelTensorReshape(shape=[]),
    )


def _kind(model: LoadedModel) -> int:
    cpu = model.provider == "CPUExecutionProvider"
    return mc.ModelInstanceGroup.KIND_CPU if cpu else mc.ModelInstanceGroup.KIND_GPU


def repository_index(
    model: LoadedModel, served_name: str, ready: bool, ready_only: bool
) -> oip.RepositoryIndexResponse:
    """The one model this engine serves, in its current state."""
    if ready_only and not ready:
        return oip.RepositoryIndexResponse()
    entry = oip.RepositoryIndexResponse.ModelIndex(
        name=served_name,
        version=model.model_version,
        state=READY if ready else UNAVAILABLE,
        reason="" if ready else "the engine is starting or shutting down",
    )
    return oip.RepositoryIndexResponse(models=[entry])


def model_statistics(
    model: LoadedModel, served_name: str, stats: Statistics
) -> oip.ModelStatisticsResponse:
    """Triton's statistics from the engine's metrics: rows scored are its inferences, model calls
    its executions; the time of successful and failed requests is not kept apart, so all of it is
    reported under ``success`` (refusals take next to none); ``last_inference`` is not kept (0)."""
    duration = oip.StatisticDuration
    entry = oip.ModelStatistics(
        name=served_name,
        version=model.model_version,
        inference_count=stats.rows,
        execution_count=stats.model_calls,
        inference_stats=oip.InferStatistics(
            success=duration(count=stats.succeeded, ns=int(stats.seconds * 1e9)),
            fail=duration(count=stats.failed),
        ),
    )
    return oip.ModelStatisticsResponse(model_stats=[entry])
